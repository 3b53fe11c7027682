"""Pointwise (1x1) convolution on channels-first data: a matrix product per sample and group.

With a 1x1 kernel, unit strides and no padding, ``out[n, g*Og + j, :] = bias[g*Og + j] +
sum_i w[g*Og + j, i] * src[n, g*Ig + i, :]``: every output plane is a weighted sum of whole
input planes. The register tile is six output channels by two SIMD vectors of consecutive
pixels (twelve accumulators, as the dense micro-kernel): per input channel, two vector loads
of pixels and six weight broadcasts feed twelve fused multiply-adds. The data stay in the
caller's channels-first layout: no layout copies.

A task owns a run of pixel strips of one sample and group. It first copies a strip's input
columns (``Ig`` channels x two vectors) to a small contiguous buffer, which stays in L1
while every six-channel block of outputs runs over it (the planes themselves are thousands of
bytes apart and would map onto a few cache sets). Each output element is one task's sum over
the input channels in ascending order, bias added last, so results do not depend on the
number of threads.
"""

from __future__ import annotations

from functools import cache, partial

import numpy as np
from numba import prange, types

from ._jit import address_of, caller, helper, inlined, kernel, kernel_signature
from ._kernels import data_type
from ._planar import store_channel
from ._simd import (
    keep_alive,
    ptr_of,
    vbroadcast,
    vfma,
    vlanes,
    vload,
    vload_masked,
    vstore,
    vzero,
)

#: Output channels of a strip (two vectors of pixels each: 12 accumulators).
CHANNEL_BLOCK = 6


def pack_pointwise(weight: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """Weights ``(G*Og, Ig, 1, ...)`` as ``(G * ceil(Og / 6), Ig, 6)`` zero-padded blocks.

    Block ``g * ceil(Og / 6) + b`` holds output channels ``g*Og + 6*b + [0, 6)`` of group
    ``g`` (zeros past ``Og``), the six weights of one input channel contiguous.

    Examples
    --------
    >>> w = np.arange(8.0).reshape(4, 2, 1, 1)
    >>> pack_pointwise(w, 1, np.dtype(np.float64))[0]
    array([[0., 2., 4., 6., 0., 0.],
           [1., 3., 5., 7., 0., 0.]])
    """
    c_out, in_group = weight.shape[0], weight.shape[1]
    out_group = c_out // groups
    blocks = -(-out_group // CHANNEL_BLOCK)
    padded = np.zeros((groups, blocks * CHANNEL_BLOCK, in_group), dtype)
    padded[:, :out_group] = weight.reshape(groups, out_group, in_group)
    return np.ascontiguousarray(
        padded.reshape(groups, blocks, CHANNEL_BLOCK, in_group).transpose(0, 1, 3, 2)
    ).reshape(groups * blocks, in_group, CHANNEL_BLOCK)


@cache
def pointwise_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_pointwise_task`: the data and strips, then the task."""
    return (data_type(dtype, 3, layout="C"), data_type(dtype, 3, layout="C"),
            data_type(dtype, 1), data_type(dtype, 3, True, "C"), types.int64, types.int64)


#: Argument types :func:`pointwise_conv` is compiled for (one signature per dtype).
pointwise_signature = kernel_signature(pointwise_task_signature)
_call_pointwise_task = caller(pointwise_task_signature)


@inlined
def _pack_strip(src, off, plane, channels, count, buf):
    """Copy columns ``[off, off + count)`` of ``channels`` planes to ``buf`` (2 vectors each).

    Columns past ``count`` (the last strip of a plane) are zero in the buffer.
    """
    lanes = vlanes(buf)
    width = 2 * lanes
    if count == width:
        for i in range(channels):
            vstore(buf, i * width, vload(src, off + i * plane))
            vstore(buf, i * width + lanes, vload(src, off + i * plane + lanes))
    else:
        for i in range(channels):
            vstore(buf, i * width, vload_masked(src, off + i * plane, count))
            vstore(buf, i * width + lanes, vload_masked(src, off + i * plane + lanes,
                                                        count - lanes))


@helper
def _strip_block(buf, packed, w_off, channels, out, out_off, plane, count, rows, bias):
    """One strip (two vectors of pixels) of ``rows`` (<= 6) output channels.

    ``buf`` holds the strip's input columns (:func:`_pack_strip`), ``packed[w_off:]`` the
    block's weights (six per input channel); channel ``k`` of the block is stored
    ``k * plane`` after ``out_off``, with ``bias[k]`` added.
    """
    lanes = vlanes(buf)
    width = 2 * lanes
    a00, a01, a10, a11 = vzero(buf), vzero(buf), vzero(buf), vzero(buf)
    a20, a21, a30, a31 = vzero(buf), vzero(buf), vzero(buf), vzero(buf)
    a40, a41, a50, a51 = vzero(buf), vzero(buf), vzero(buf), vzero(buf)
    w = w_off
    for i in range(channels):
        x0 = vload(buf, i * width)
        x1 = vload(buf, i * width + lanes)
        v = vbroadcast(packed[w])
        a00 = vfma(v, x0, a00)
        a01 = vfma(v, x1, a01)
        v = vbroadcast(packed[w + 1])
        a10 = vfma(v, x0, a10)
        a11 = vfma(v, x1, a11)
        v = vbroadcast(packed[w + 2])
        a20 = vfma(v, x0, a20)
        a21 = vfma(v, x1, a21)
        v = vbroadcast(packed[w + 3])
        a30 = vfma(v, x0, a30)
        a31 = vfma(v, x1, a31)
        v = vbroadcast(packed[w + 4])
        a40 = vfma(v, x0, a40)
        a41 = vfma(v, x1, a41)
        v = vbroadcast(packed[w + 5])
        a50 = vfma(v, x0, a50)
        a51 = vfma(v, x1, a51)
        w += CHANNEL_BLOCK
    store_channel(out, out_off, a00, a01, bias[0], count)
    if rows > 1:
        store_channel(out, out_off + plane, a10, a11, bias[1], count)
    if rows > 2:
        store_channel(out, out_off + 2 * plane, a20, a21, bias[2], count)
    if rows > 3:
        store_channel(out, out_off + 3 * plane, a30, a31, bias[3], count)
    if rows > 4:
        store_channel(out, out_off + 4 * plane, a40, a41, bias[4], count)
    if rows > 5:
        store_channel(out, out_off + 5 * plane, a50, a51, bias[5], count)


@kernel
def pointwise_conv(src, packed, bias, out, strips_per_task, task_at):
    """Pointwise convolution of channels-first planes.

    Parameters
    ----------
    src : ndarray, shape (N, G*Ig, P), C-contiguous
        Input planes (all spatial dimensions flattened into ``P``).
    packed : ndarray, shape (G * ceil(Og / 6), Ig, 6), C-contiguous
        Weights in blocks of six output channels (:func:`pack_pointwise`).
    bias : ndarray, shape (G*Og,)
        Added to every output (zeros when there is no bias).
    out : ndarray, shape (N, G*Og, P), C-contiguous
        Written once per element.
    strips_per_task : int
        Strips of two vectors of pixels per task (at least 1).
    task_at : int
        :data:`pointwise_task_address` of the dtype.
    """
    groups = src.shape[1] // packed.shape[1]
    width = 2 * vlanes(out)
    n_strips = (src.shape[2] + width - 1) // width
    n_runs = (n_strips + strips_per_task - 1) // strips_per_task
    for task in prange(src.shape[0] * groups * n_runs):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_pointwise_task(task_at, (src, packed, bias, out, strips_per_task, np.int64(task)))


@helper
def _pointwise_task(src, packed, bias, out, strips_per_task, task):
    """Task ``task`` of :func:`pointwise_conv`: a run of strips of one sample and group."""
    c_in, pixels = src.shape[1], src.shape[2]
    c_out = out.shape[1]
    in_group = packed.shape[1]
    groups = c_in // in_group
    out_group = c_out // groups
    blocks = packed.shape[0] // groups
    width = 2 * vlanes(out)
    n_strips = (pixels + width - 1) // width
    n_runs = (n_strips + strips_per_task - 1) // strips_per_task
    src_p = ptr_of(src, 0)
    packed_p = ptr_of(packed, 0)
    out_p = ptr_of(out, 0)
    bias_p = ptr_of(bias, 0)
    run = task % n_runs
    rest = task // n_runs
    g = rest % groups
    n = rest // groups
    buf_array = np.empty(in_group * width, dtype=out.dtype)
    buf = ptr_of(buf_array, 0)
    for strip in range(run * strips_per_task, min(n_strips, (run + 1) * strips_per_task)):
        col = strip * width
        count = min(width, pixels - col)
        _pack_strip(src_p, (n * c_in + g * in_group) * pixels + col, pixels, in_group,
                    count, buf)
        for b in range(blocks):
            first = b * CHANNEL_BLOCK
            co = g * out_group + first
            _strip_block(buf, packed_p, (g * blocks + b) * in_group * CHANNEL_BLOCK,
                         in_group, out_p, (n * c_out + co) * pixels + col, pixels, count,
                         min(CHANNEL_BLOCK, out_group - first), ptr_of(bias_p, co))
    keep_alive(buf_array)


#: ``dtype -> task_at`` of :func:`pointwise_conv` (compiles the task once)
pointwise_task_address = partial(address_of, _pointwise_task, pointwise_task_signature)
