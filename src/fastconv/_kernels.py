"""Compiled kernels: parallel ``@njit`` loops, private, no validation.

All kernels run the canonical 3-D, channels-last problem. Arrays arrive as views in
``(N, D0, D1, D2, C)`` order whatever the caller's layout (channels-first data is a
strided view, never a copy), and weights arrive packed by the API layer. Every output
element is computed by exactly one parallel task, in a fixed summation order, so results
do not depend on the number of threads and no two threads ever write the same element.

See :mod:`fastconv._plan` for the gather lists and tap tables these kernels walk.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import helper, kernel


@kernel
def gather_conv(src, packed, bias, out, start0, entries0, start1, entries1, start2, entries2,
                col_block):
    """Compiled core of forward, input-gradient and transposed convolution.

    ``out[n, q0, q1, q2, g*Og + j] = bias[g*Og + j] + sum src[n, s0, s1, s2, g*Ig + i] *
    packed[g, t0, t1, t2, i, j]`` over the ``(s, t)`` pairs of each dimension's gather
    list row ``q`` and over ``i``.

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
    start0, entries0, start1, entries1, start2, entries2 : ndarray of int64
        Gather list of each dimension (see :class:`fastconv._plan.GatherList`).
    col_block : int
        Output positions along the last dimension computed by one task.
    """
    batch, rows0, rows1, cols = out.shape[0], out.shape[1], out.shape[2], out.shape[3]
    groups, in_group, out_group = packed.shape[0], packed.shape[4], packed.shape[5]
    n_col_blocks = (cols + col_block - 1) // col_block
    n_tasks = batch * rows0 * rows1 * n_col_blocks * groups
    for task in prange(n_tasks):
        g = task % groups
        rest = task // groups
        col_start = (rest % n_col_blocks) * col_block
        rest //= n_col_blocks
        q1 = rest % rows1
        rest //= rows1
        q0 = rest % rows0
        n = rest // rows0
        n_cols = min(col_block, cols - col_start)
        acc = np.zeros((col_block, out_group), dtype=out.dtype)
        for e0 in range(start0[q0], start0[q0 + 1]):
            s0 = entries0[e0, 0]
            t0 = entries0[e0, 1]
            for e1 in range(start1[q1], start1[q1 + 1]):
                s1 = entries1[e1, 0]
                t1 = entries1[e1, 1]
                for c in range(n_cols):
                    q2 = col_start + c
                    acc_row = acc[c]
                    for e2 in range(start2[q2], start2[q2 + 1]):
                        s2 = entries2[e2, 0]
                        taps = packed[g, t0, t1, entries2[e2, 1]]
                        for i in range(in_group):
                            value = src[n, s0, s1, s2, g * in_group + i]
                            tap_row = taps[i]
                            for j in range(out_group):
                                acc_row[j] += value * tap_row[j]
        for c in range(n_cols):
            for j in range(out_group):
                out[n, q0, q1, col_start + c, g * out_group + j] = (
                    acc[c, j] + bias[g * out_group + j]
                )


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
def weight_grad(src, grad_out, table0, table1, table2, in_block, with_bias, partial_w,
                partial_b):
    """Compiled core of the weight gradient, with the bias gradient fused in.

    ``partial_w[chunk, g, t0, t1, t2, i, j] = sum src[n, table0[q0, t0], table1[q1, t1],
    table2[q2, t2], g*Ig + i] * grad_out[n, q0, q1, q2, g*Og + j]`` over the output rows
    of ``chunk`` (rows are ``(n, q0, q1)`` triples) and all ``q2``, skipping ``-1`` (zero
    padding) entries. Each task owns one ``(chunk, g, t0, t1, t2, i-block)`` tile.

    Parameters
    ----------
    src : ndarray, shape (N, S0, S1, S2, G*Ig)
        Input of the forward convolution, any strides.
    grad_out : ndarray, shape (N, Q0, Q1, Q2, G*Og)
        Gradient of the output, any strides.
    table0, table1, table2 : ndarray of int64, shape (Q, T)
        Tap tables (see :func:`fastconv._plan.tap_table`).
    in_block : int
        Input channels per task.
    with_bias : bool
        Also fill ``partial_b[chunk, g*Og + j]`` (tasks with tap 0 and the first block).
    partial_w : ndarray, shape (n_chunks, G, T0, T1, T2, Ig, Og)
        Per-chunk partial sums, each element written once.
    partial_b : ndarray, shape (n_chunks, G*Og)
        Per-chunk partial bias gradients.
    """
    n_chunks, groups = partial_w.shape[0], partial_w.shape[1]
    taps0, taps1, taps2 = partial_w.shape[2], partial_w.shape[3], partial_w.shape[4]
    in_group, out_group = partial_w.shape[5], partial_w.shape[6]
    rows0, rows1, cols = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    n_rows = grad_out.shape[0] * rows0 * rows1
    n_in_blocks = max(1, (in_group + in_block - 1) // in_block)
    n_tasks = n_chunks * groups * taps0 * taps1 * taps2 * n_in_blocks
    for task in prange(n_tasks):
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
            s0 = table0[q0, t0]
            s1 = table1[q1, t1]
            if s0 < 0 or s1 < 0:
                continue
            for q2 in range(cols):
                s2 = table2[q2, t2]
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
