"""Public convolution functions: argument handling, layout, and dispatch to the kernels.

Each public function normalises and validates its arguments (:mod:`fastconv._args`),
asks the plan layer (:mod:`fastconv._plan`) for geometry, tiles and chunking, takes
free strided views of the data in the engine's canonical ``(N, D0, D1, D2, C)`` order,
and calls one compiled kernel (:mod:`fastconv._kernels`). No loops run here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from . import _args, _dense, _dense_weight, _jit, _kernels, _plan, _planar
from ._args import ConvSpec, DataShape
from ._simd import lanes_for

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_input", "conv2d_input", "conv3d_input",
    "conv1d_weight", "conv2d_weight", "conv3d_weight",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
]

ArrayLike = Any
IntOrTuple = int | tuple[int, ...]
Padding = int | str | tuple[int | tuple[int, int], ...]


# ---------------------------------------------------------------------------- layout
def _canonical(array: np.ndarray, ndim: int, data: DataShape) -> np.ndarray:
    """A strided view of ``array`` in the kernels' ``(N, D0, D1, D2, C)`` order (no copy)."""
    view = array if data.batched else array[np.newaxis]
    if not data.channels_last:
        view = view.transpose(0, *range(2, ndim + 2), 1)
    return view[(slice(None),) + (np.newaxis,) * (3 - ndim)]


def _pack(weight: np.ndarray, spec: ConvSpec, dtype: np.dtype, adjoint: bool) -> np.ndarray:
    """Pack ``(C_out, C_in/G, *kernel)`` weights as ``(G, T0, T1, T2, Ig, Og)`` for the kernel.

    For the forward pass the kernel reads input channels and writes output channels; for
    the adjoint (input gradient, transposed convolution) the roles swap.
    """
    g = spec.groups
    taps = _plan.to_3d(spec.kernel, 1)
    grouped = weight.astype(dtype, copy=False).reshape(
        g, spec.c_out // g, spec.c_in // g, *taps
    )
    order = (0, 3, 4, 5, 1, 2) if adjoint else (0, 3, 4, 5, 2, 1)
    return np.ascontiguousarray(grouped.transpose(order))


def _destination(shape: tuple[int, ...], dtype: np.dtype, out: np.ndarray | None,
                 *inputs: np.ndarray) -> np.ndarray:
    """Array the kernel writes: ``out`` itself unless it overlaps an input."""
    if out is not None and not any(np.may_share_memory(out, a) for a in inputs):
        return out
    return np.empty(shape, dtype)


def _finish(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Copy into ``out`` when the kernel had to write elsewhere; return what the user gets."""
    if out is None or out is result:
        return result
    out[...] = result
    return out


# ---------------------------------------------------------------------------- passes
@lru_cache(maxsize=256)
def _geometry(spec: ConvSpec, adjoint: bool) -> tuple[np.ndarray, np.ndarray]:
    """Geometry records of ``spec`` and the pair capacity of each dim (cached, read-only)."""
    geometry = spec.geometry(adjoint)
    capacity = np.array([_plan.pair_capacity(row) for row in geometry.tolist()], np.int64)
    geometry.flags.writeable = False
    capacity.flags.writeable = False
    return geometry, capacity


def _gather(src: np.ndarray, packed: np.ndarray, bias: np.ndarray, dest: np.ndarray,
            spec: ConvSpec, adjoint: bool) -> None:
    """Run the gather kernel writing every element of ``dest``."""
    if dest.size == 0:
        return
    block, group_block = _plan.gather_blocks(*dest.shape[:4], packed.shape[0], packed.shape[4],
                                             packed.shape[5], dest.itemsize)
    geometry, capacity = _geometry(spec, adjoint)
    _jit.ensure_compiled(_kernels.gather_conv, _kernels.gather_signature, dest.dtype)
    _kernels.gather_conv(src, packed, bias, dest, geometry, capacity, block, group_block)


def _bias_vector(bias: np.ndarray | None, length: int, dtype: np.dtype) -> np.ndarray:
    if bias is None:
        return np.zeros(length, dtype)
    return np.ascontiguousarray(bias, dtype=dtype)


#: Algorithm override for tests and benchmarks: None (the plan decides), "dense", "planar" or
#: "gather"; applies to the forward pass and to the adjoint (input gradient, transposed
#: convolution) where the algorithm can run them, else the gather kernel does.
FORCE_FORWARD_ALGORITHM: str | None = None

#: Weight-gradient override for tests and benchmarks: None, "dense", "planar" or "gather".
FORCE_WEIGHT_ALGORITHM: str | None = None


def _channels_first(view: np.ndarray) -> np.ndarray:
    """The ``(N, C, D0, D1, D2)`` view of a canonical ``(N, D0, D1, D2, C)`` view."""
    return view.transpose(0, 4, 1, 2, 3)


def _planar_layout(*views: np.ndarray) -> bool:
    """Whether every view is C-contiguous in channels-first order (planar kernels' layout)."""
    return all(_channels_first(v).flags.c_contiguous for v in views)


def _dense_forward(src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   spec: ConvSpec, dest: np.ndarray) -> None:
    """Forward pass on the SIMD micro-kernel; needs C-contiguous channels-last data."""
    taps = _plan.to_3d(spec.kernel, 1)
    packed = _dense.pack_weights(weight.astype(dest.dtype, copy=False).reshape(
        spec.c_out, spec.c_in, *taps))
    contiguous_src = np.ascontiguousarray(src)
    target = dest if dest.flags.c_contiguous else np.empty(dest.shape, dest.dtype)
    bias_vector = None if bias is None else np.ascontiguousarray(bias, dtype=dest.dtype)
    _dense.dense_forward(contiguous_src, packed, bias_vector, target,
                         _plan.to_3d(spec.stride, 1), _plan.to_3d(spec.dilation, 1),
                         _plan.to_3d(tuple(p[0] for p in spec.pads), 0))
    if target is not dest:
        dest[...] = target


def _planar_row_block(spec: ConvSpec, out_planes: np.ndarray, tasks_per_block: int) -> int:
    """Row block of a planar kernel writing (or reading the gradient of) ``out_planes``."""
    _, _, _, rows1, cols = out_planes.shape
    taps0, _, taps2 = _plan.to_3d(spec.kernel, 1)
    stride1 = _plan.to_3d(spec.stride, 1)[1]
    width = _planar.tile_width(cols, taps2, _plan.to_3d(spec.dilation, 1)[2],
                               lanes_for(out_planes.dtype))
    row_bytes = (spec.c_in // spec.groups) * taps0 * width * stride1 * out_planes.itemsize
    return _plan.planar_row_block(tasks_per_block, rows1, cols, row_bytes)


def _planar_forward(src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                    spec: ConvSpec, dest: np.ndarray) -> None:
    """Forward pass on the planar kernel (channels-first data, unit last stride)."""
    taps = _plan.to_3d(spec.kernel, 1)
    kernel = np.ascontiguousarray(weight, dtype=dest.dtype).reshape(
        spec.c_out, spec.c_in // spec.groups, *taps)
    planes = np.ascontiguousarray(_channels_first(src))
    view = _channels_first(dest)
    target = view if view.flags.c_contiguous else np.empty(view.shape, dest.dtype)
    row_block = _planar_row_block(spec, target, target.shape[0] * spec.groups * target.shape[2])
    _jit.ensure_compiled(_planar.planar_conv, _planar.planar_signature, dest.dtype)
    _planar.planar_conv(planes, kernel, _planar.pack_channel_blocks(kernel, spec.groups),
                        _bias_vector(bias, spec.c_out, dest.dtype), target,
                        _geometry(spec, False)[0], row_block)
    if target is not view:
        view[...] = target


def _forward_pass(src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                  spec: ConvSpec, dest: np.ndarray, planar_layout: bool | None = None) -> None:
    """Convolution ``dest = conv(src, weight) + bias`` on canonical views.

    ``planar_layout`` overrides the layout test of the views (an adjoint's stride phase
    writes a strided view of channels-first data, through a temporary).
    """
    if planar_layout is None:
        planar_layout = _planar_layout(src, dest)
    algorithm = _plan.forward_algorithm(spec.padding_mode, spec.groups, spec.c_in, spec.c_out,
                                        spec.kernel, spec.stride, _dense.block_size(dest.dtype),
                                        planar_layout, FORCE_FORWARD_ALGORITHM)
    if dest.size == 0 or algorithm == "gather":
        packed = _pack(weight, spec, dest.dtype, adjoint=False)
        _gather(src, packed, _bias_vector(bias, spec.c_out, dest.dtype), dest, spec,
                adjoint=False)
    elif algorithm == "dense":
        _dense_forward(src, weight, bias, spec, dest)
    else:
        _planar_forward(src, weight, bias, spec, dest)


def _phase_problem(weight: np.ndarray, spec: ConvSpec, phases: tuple[_plan.Phase, ...]
                   ) -> tuple[np.ndarray, ConvSpec]:
    """Kernel and spec of the forward convolution computing one stride phase of the adjoint.

    The kernel keeps the phase's taps along each dimension, in its order (which reverses
    them), with the channel axes swapped within each group.
    """
    ndim, g = spec.ndim, spec.groups
    kernel = weight.reshape(g, spec.c_out // g, spec.c_in // g, *spec.kernel)
    for axis, phase in enumerate(phases):
        kernel = np.take(kernel, phase.taps, axis=3 + axis)
    taps = tuple(len(p.taps) for p in phases)
    kernel = np.swapaxes(kernel, 1, 2).reshape(spec.c_in, spec.c_out // g, *taps)
    in_sizes = tuple(q - p.offset for q, p in zip(spec.out_sizes, phases))
    dilation = tuple(p.dilation for p in phases)
    counts = tuple(p.count for p in phases)
    pads = tuple((p.pad_low, (c - 1) + (k - 1) * d - p.pad_low - (n - 1))
                 for p, c, k, d, n in zip(phases, counts, taps, dilation, in_sizes))
    problem = ConvSpec(ndim, spec.c_out, spec.c_in, g, in_sizes, taps, (1,) * ndim, dilation,
                       pads, counts, "zeros")
    return kernel, problem


def _phase_adjoint(src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   spec: ConvSpec, dest: np.ndarray, planar_layout: bool) -> None:
    """Adjoint as one stride-1 forward convolution per stride phase (zero padding)."""
    lead = (slice(None),) * (4 - spec.ndim)  # batch and the unit leading dims
    per_dim = [_plan.adjoint_phases(n, q, k, s, d, p[0]) for n, q, k, s, d, p in
               zip(spec.in_sizes, spec.out_sizes, spec.kernel, spec.stride, spec.dilation,
                   spec.pads)]
    for phases in itertools.product(*per_dim):
        if any(p.count == 0 for p in phases):
            continue
        target = dest[lead + tuple(slice(p.start, None, s) for p, s in zip(phases, spec.stride))]
        if any(not p.taps for p in phases):
            target[...] = 0 if bias is None else bias
            continue
        kernel, problem = _phase_problem(weight, spec, phases)
        source = src[lead + tuple(slice(p.offset, None) for p in phases)]
        _forward_pass(source, kernel, bias, problem, target, planar_layout)


def _adjoint_pass(src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                  spec: ConvSpec, dest: np.ndarray) -> None:
    """Adjoint of the convolution ``spec`` (input gradient, transposed convolution)."""
    planar_layout = _planar_layout(src, dest)
    algorithm = _plan.adjoint_algorithm(spec.padding_mode, spec.groups, spec.c_in, spec.c_out,
                                        spec.kernel, spec.stride, _dense.block_size(dest.dtype),
                                        planar_layout, FORCE_FORWARD_ALGORITHM)
    if dest.size == 0 or algorithm == "gather":
        packed = _pack(weight, spec, dest.dtype, adjoint=True)
        _gather(src, packed, _bias_vector(bias, spec.c_in, dest.dtype), dest, spec,
                adjoint=True)
    else:
        # every phase reads the gradient: lay it out for the dense kernel once (the planar
        # kernel was chosen because it is laid out for it already)
        if algorithm == "dense":
            src = np.ascontiguousarray(src)
        _phase_adjoint(src, weight, bias, spec, dest, planar_layout)


def _planar_weight(src: np.ndarray, grad_out: np.ndarray, spec: ConvSpec, dtype: np.dtype,
                   want_bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Weight (and bias) gradient on the planar kernel (channels-first data, unit last stride)."""
    taps = _plan.to_3d(spec.kernel, 1)
    planes = np.ascontiguousarray(_channels_first(src))
    grad_planes = np.ascontiguousarray(_channels_first(grad_out))
    batch, _, rows0, rows1, _ = grad_planes.shape
    g, in_group = spec.groups, spec.c_in // spec.groups
    # tasks are (chunk, group, output block): rows per tile only bound the tile size
    row_block = _planar_row_block(spec, grad_planes, 64)
    plane_taps = taps[1] * taps[2]
    slots = in_group * taps[0] * (plane_taps + plane_taps % 2)
    out_block = _plan.planar_out_block(spec.c_out // g, slots * lanes_for(dtype) * dtype.itemsize)
    units = batch * rows0 * -(-rows1 // row_block)
    chunks = _plan.reduction_chunks(units, g * -(-(spec.c_out // g) // out_block))
    partial_w = np.empty((chunks, spec.c_out, in_group, *taps), dtype)
    partial_b = np.empty((chunks, spec.c_out), dtype)
    _jit.ensure_compiled(_planar.planar_weight_grad, _planar.planar_weight_grad_signature, dtype)
    _planar.planar_weight_grad(planes, grad_planes, _geometry(spec, False)[0], row_block,
                               out_block, want_bias, partial_w, partial_b)
    grad_weight = partial_w[0] if chunks == 1 else partial_w.sum(axis=0)
    grad_bias = None
    if want_bias:
        grad_bias = partial_b[0] if chunks == 1 else partial_b.sum(axis=0)
    return grad_weight.reshape(spec.c_out, in_group, *spec.kernel), grad_bias


def _padded_input(src: np.ndarray, spec: ConvSpec, out_sizes: tuple[int, ...]) -> np.ndarray:
    """Channels-last C-contiguous input, zero-padded so that every window read is inside.

    No copy beyond the layout change when there is no low padding and no window reaches
    past the input's end.
    """
    x = np.ascontiguousarray(src)
    lows = _plan.to_3d(tuple(p[0] for p in spec.pads), 0)
    needed = tuple((q - 1) * s + (k - 1) * d + 1 for q, s, k, d in
                   zip(out_sizes, _plan.to_3d(spec.stride, 1), _plan.to_3d(spec.kernel, 1),
                       _plan.to_3d(spec.dilation, 1)))
    sizes = x.shape[1:4]
    if not any(lows) and all(n <= size for n, size in zip(needed, sizes)):
        return x
    padded = np.zeros((x.shape[0], *needed, x.shape[4]), x.dtype)
    kept = tuple(min(size, n - low) for size, n, low in zip(sizes, needed, lows))
    padded[(slice(None),) + tuple(slice(low, low + k) for low, k in zip(lows, kept))] = \
        x[(slice(None),) + tuple(slice(0, k) for k in kept)]
    return padded


def _dense_weight_grad(src: np.ndarray, grad_out: np.ndarray, spec: ConvSpec,
                       dtype: np.dtype) -> np.ndarray:
    """Weight gradient on the dense register tiles (channels-last, zero-padded copies)."""
    taps = _plan.to_3d(spec.kernel, 1)
    grad = np.ascontiguousarray(grad_out)
    padded = _padded_input(src, spec, grad.shape[1:4])
    steps = np.array([_plan.to_3d(spec.stride, 1), _plan.to_3d(spec.dilation, 1)],
                     np.int64).T.copy()
    out_tiles = -(-spec.c_out // _dense.block_size(dtype))
    chunks = _plan.reduction_chunks(math.prod(grad.shape[:3]), taps[0] * taps[1] * out_tiles)
    partial = np.empty((chunks, spec.c_out, taps[0], taps[1], taps[2] * spec.c_in), dtype)
    _jit.ensure_compiled(_dense_weight.dense_weight_grad,
                         _dense_weight.dense_weight_grad_signature, dtype)
    _dense_weight.dense_weight_grad(padded, grad, steps, partial)
    summed = partial[0] if chunks == 1 else partial.sum(axis=0)
    grad_weight = summed.reshape(spec.c_out, *taps, spec.c_in).transpose(0, 4, 1, 2, 3)
    return np.ascontiguousarray(grad_weight).reshape(spec.c_out, spec.c_in, *spec.kernel)


def _weight_pass(src: np.ndarray | None, grad_out: np.ndarray, spec: ConvSpec, dtype: np.dtype,
                 want_weight: bool, want_bias: bool
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Weight and/or bias gradient from canonical views of the input and output gradient."""
    if want_weight and src is not None and src.size and grad_out.size:
        algorithm = _plan.weight_algorithm(spec.padding_mode, spec.groups, spec.c_in,
                                           spec.c_out, grad_out.shape[3], spec.stride,
                                           _dense.block_size(dtype),
                                           _planar_layout(src, grad_out), FORCE_WEIGHT_ALGORITHM)
        if algorithm == "planar":
            return _planar_weight(src, grad_out, spec, dtype, want_bias)
        if algorithm == "dense":
            grad_weight = _dense_weight_grad(src, grad_out, spec, dtype)
            return grad_weight, _weight_pass(None, grad_out, spec, dtype, False, True)[1] \
                if want_bias else None
    g = spec.groups
    in_group, out_group = spec.c_in // g, spec.c_out // g
    taps = _plan.to_3d(spec.kernel, 1)
    # unit stride along channels lets the kernel's innermost loop vectorise
    grad_out = np.ascontiguousarray(grad_out)
    in_block = max(1, min(in_group, 64, 16384 // max(1, out_group * dtype.itemsize)))
    tiles = g * math.prod(taps) * max(1, -(-in_group // in_block))
    rows = grad_out.shape[0] * grad_out.shape[1] * grad_out.shape[2]
    chunks = _plan.reduction_chunks(rows, tiles)
    partial_b = np.zeros((chunks, spec.c_out), dtype)
    grad_weight = None
    if want_weight:
        partial_w = np.zeros((chunks, g, *taps, in_group, out_group), dtype)
        if partial_w.size or want_bias:
            _jit.ensure_compiled(_kernels.weight_grad, _kernels.weight_grad_signature, dtype)
            _kernels.weight_grad(src, grad_out, _geometry(spec, False)[0], in_block, want_bias,
                                 partial_w, partial_b)
        summed = partial_w[0] if chunks == 1 else partial_w.sum(axis=0)
        grad_weight = np.ascontiguousarray(summed.transpose(0, 5, 4, 1, 2, 3)).reshape(
            spec.c_out, in_group, *spec.kernel
        )
    elif want_bias and partial_b.size:
        _jit.ensure_compiled(_kernels.bias_grad, _kernels.bias_grad_signature, dtype)
        _kernels.bias_grad(grad_out, g, partial_b)
    grad_bias = None
    if want_bias:
        grad_bias = partial_b[0].copy() if chunks == 1 else partial_b.sum(axis=0)
    return grad_weight, grad_bias


# ---------------------------------------------------------------------------- generic API
def _operands(ndim: int, x: ArrayLike, weight: ArrayLike, channels_last: bool
              ) -> tuple[np.ndarray, np.ndarray, DataShape]:
    """Arrays and data shape of a call taking ``x`` and ``weight``."""
    layout = _args.flag("channels_last", channels_last)
    x_arr = _args.as_array("x", x)
    w_arr = _args.as_array("weight", weight)
    return x_arr, w_arr, _args.data_shape("x", x_arr.shape, ndim, layout)


def _apply(x_arr: np.ndarray, w_arr: np.ndarray, bias: ArrayLike | None, data: DataShape,
           spec: ConvSpec, adjoint: bool, size_argument: tuple[str, object],
           out: np.ndarray | None) -> np.ndarray:
    """Validate the rest of a forward or transposed call, then run its pass.

    ``size_argument`` names the argument blamed when the result would not fit in memory.
    """
    channels = spec.c_in if adjoint else spec.c_out
    b_arr = _args.check_bias(bias, channels)
    named = {"x": x_arr, "weight": w_arr} | ({} if b_arr is None else {"bias": b_arr})
    dtype = _args.result_dtype(**named)
    shape = data.full_shape(channels, spec.in_sizes if adjoint else spec.out_sizes)
    _args.check_size(*size_argument, shape, dtype.itemsize)
    target = _args.check_out(out, shape, dtype)
    result = _destination(shape, dtype, target, *named.values())
    src = _canonical(x_arr.astype(dtype, copy=False), spec.ndim, data)
    run = _adjoint_pass if adjoint else _forward_pass
    run(src, w_arr, b_arr, spec, _canonical(result, spec.ndim, data))
    return _finish(result, target)


def _forward(ndim: int, x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None,
             stride: IntOrTuple, padding: Padding, dilation: IntOrTuple, groups: int,
             padding_mode: str, channels_last: bool, out: np.ndarray | None) -> np.ndarray:
    x_arr, w_arr, data = _operands(ndim, x, weight, channels_last)
    spec = _args.conv_spec(ndim, data, w_arr.shape, stride, padding, dilation, groups,
                           padding_mode)
    return _apply(x_arr, w_arr, bias, data, spec, False, ("padding", padding), out)


def _transpose(ndim: int, x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None,
               stride: IntOrTuple, padding: Padding, output_padding: IntOrTuple, groups: int,
               dilation: IntOrTuple, channels_last: bool, out: np.ndarray | None
               ) -> np.ndarray:
    x_arr, w_arr, data = _operands(ndim, x, weight, channels_last)
    spec = _args.transpose_spec(ndim, data, w_arr.shape, stride, padding, output_padding,
                                groups, dilation)
    return _apply(x_arr, w_arr, bias, data, spec, True, ("stride", stride), out)


def _backward(ndim: int, x: ArrayLike | None, input_shape: tuple[int, ...] | None,
              weight: ArrayLike | None, weight_shape: tuple[int, ...] | None,
              grad_output: ArrayLike, stride: IntOrTuple, padding: Padding,
              dilation: IntOrTuple, groups: int, padding_mode: str, channels_last: bool,
              needs: frozenset[str]
              ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Shared body of the gradient functions; each passes either arrays or shapes."""
    layout = _args.flag("channels_last", channels_last)
    named: dict[str, np.ndarray] = {}
    if x is not None:
        named["x"] = _args.as_array("x", x)
        input_shape = named["x"].shape
    if weight is not None:
        named["weight"] = _args.as_array("weight", weight)
        weight_shape = named["weight"].shape
    gy_arr = _args.as_array("grad_output", grad_output)
    named["grad_output"] = gy_arr
    data = _args.data_shape("x" if x is not None else "input_shape", input_shape, ndim, layout)
    spec = _args.conv_spec(ndim, data, weight_shape, stride, padding, dilation, groups,
                           padding_mode, "weight" if weight is not None else "weight_shape")
    dtype = _args.result_dtype(**named)
    _args.check_grad_output(gy_arr, data.full_shape(spec.c_out, spec.out_sizes))
    if "input" in needs:
        _args.check_size("input_shape", input_shape, input_shape, dtype.itemsize)
    if "weight" in needs:
        _args.check_size("weight_shape", weight_shape, weight_shape, dtype.itemsize)
    gy_view = _canonical(gy_arr.astype(dtype, copy=False), ndim, data)
    grad_input = grad_weight = grad_bias = None
    if "input" in needs:
        grad_input = np.empty(input_shape, dtype)
        _adjoint_pass(gy_view, named["weight"], None, spec, _canonical(grad_input, ndim, data))
    if "weight" in needs or "bias" in needs:
        src = None if x is None else _canonical(named["x"].astype(dtype, copy=False), ndim, data)
        grad_weight, grad_bias = _weight_pass(src, gy_view, spec, dtype, "weight" in needs,
                                              "bias" in needs)
    return grad_input, grad_weight, grad_bias


def _input_grad(ndim: int, input_shape: tuple[int, ...], weight: ArrayLike,
                grad_output: ArrayLike, *options: Any) -> np.ndarray:
    shape = _args.shape_spec("input_shape", input_shape)
    return _backward(ndim, None, shape, weight, None, grad_output, *options,
                     frozenset({"input"}))[0]


def _weight_grad(ndim: int, x: ArrayLike, weight_shape: tuple[int, ...],
                 grad_output: ArrayLike, *options: Any) -> np.ndarray:
    shape = _args.shape_spec("weight_shape", weight_shape)
    return _backward(ndim, x, None, None, shape, grad_output, *options,
                     frozenset({"weight"}))[1]


# ---------------------------------------------------------------------------- public API
_EXAMPLE_DATA = {
    1: ("x = np.arange(6.0).reshape(1, 1, 6)", "w = np.ones((1, 1, 3))", (1, 1, 6), (1, 1, 3)),
    2: ("x = np.arange(16.0).reshape(1, 1, 4, 4)", "w = np.ones((1, 1, 3, 3))", (1, 1, 4, 4),
        (1, 1, 3, 3)),
    3: ("x = np.arange(64.0).reshape(1, 1, 4, 4, 4)", "w = np.ones((1, 1, 3, 3, 3))",
        (1, 1, 4, 4, 4), (1, 1, 3, 3, 3)),
}

_PARAMETERS = """\
stride : int or tuple of {d} ints, default 1
    Step between output positions, at least 1.
padding : int, tuple, or {{"valid", "same", "full"}}, default 0
    An int (all sides), one int per dim (symmetric), one ``(low, high)`` pair per dim,
    ``"valid"`` (none), ``"same"`` (output size ``ceil(n / stride)`` for any stride; the
    extra pad goes at the end) or ``"full"`` (``dilation * (k - 1)`` on both sides).
dilation : int or tuple of {d} ints, default 1
    Spacing between kernel taps, at least 1.
groups : int, default 1
    Channel groups; must divide the input and output channels.
padding_mode : {{"zeros", "reflect", "replicate", "circular"}}, default "zeros"
    How the input is padded before convolving (as ``torch.nn.Conv{d}d``).
channels_last : bool, default False
    Data (and results) are ``(N, *spatial, C)`` instead of ``(N, C, *spatial)``."""


def _doc(template: str, d: int) -> str:
    x_line, w_line, _, _ = _EXAMPLE_DATA[d]
    return template.format(d=d, parameters=_PARAMETERS.format(d=d), x_line=x_line,
                           w_line=w_line, spatial=", ".join(["H", "W", "D"][:d]) if d > 1
                           else "L")


_CONV_DOC = """{d}-D convolution (cross-correlation, as in deep-learning frameworks).

``out[n, k, p] = bias[k] + sum_{{c, t}} x_padded[n, g*C_g + c, p*stride + t*dilation] *
weight[k, c, t]`` where ``g`` is the group of output channel ``k``.

Parameters
----------
x : array_like, shape (N, C_in, *spatial) or (C_in, *spatial)
    Input with {d} spatial dims; ``(N, *spatial, C_in)`` with ``channels_last=True``.
    Unbatched input gives unbatched output.
weight : array_like, shape (C_out, C_in / groups, *kernel)
    Filters.
bias : array_like, shape (C_out,), optional
    Added to every output position.
{parameters}
out : ndarray, optional
    C-contiguous array of exactly the result's shape and dtype to write into.

Returns
-------
ndarray
    The convolution, in ``np.result_type(x, weight, bias, np.float32)``.

See Also
--------
conv{d}d_backward : gradients of this function.
conv_transpose{d}d : its adjoint.
conv_output_shape : output size without computing.

Examples
--------
>>> import numpy as np
>>> import fastconv
>>> {x_line}
>>> {w_line}
>>> y = fastconv.conv{d}d(x, w, padding=1)
>>> y.shape == x.shape
True
>>> float(y.sum()) == float(fastconv.conv{d}d(x, w, padding="same").sum())
True
"""

_INPUT_DOC = """Gradient of :func:`conv{d}d` with respect to its input.

Parameters
----------
input_shape : tuple of ints
    Shape of the input ``x`` of the forward call (batched or not, in its layout).
weight : array_like, shape (C_out, C_in / groups, *kernel)
    Filters of the forward call.
grad_output : array_like
    Gradient with respect to the forward output (same shape as that output).
{parameters}

Returns
-------
ndarray, shape ``input_shape``
    ``grad_input``; padded contributions are folded back for every padding mode.

Examples
--------
>>> import numpy as np
>>> import fastconv
>>> {x_line}
>>> {w_line}
>>> g = np.ones_like(fastconv.conv{d}d(x, w))
>>> fastconv.conv{d}d_input(x.shape, w, g).shape == x.shape
True
"""

_WEIGHT_DOC = """Gradient of :func:`conv{d}d` with respect to its weight.

Parameters
----------
x : array_like
    Input of the forward call.
weight_shape : tuple of ints
    Shape ``(C_out, C_in / groups, *kernel)`` of the forward call's weight.
grad_output : array_like
    Gradient with respect to the forward output.
{parameters}

Returns
-------
ndarray, shape ``weight_shape``
    ``grad_weight``. Use :func:`conv{d}d_backward` to get the bias gradient in the same pass.

Examples
--------
>>> import numpy as np
>>> import fastconv
>>> {x_line}
>>> {w_line}
>>> g = np.ones_like(fastconv.conv{d}d(x, w))
>>> fastconv.conv{d}d_weight(x, w.shape, g).shape == w.shape
True
"""

_BACKWARD_DOC = """Gradients of :func:`conv{d}d` with respect to input, weight and bias.

Weight and bias gradients are computed in one fused pass over the data.

Parameters
----------
x : array_like
    Input of the forward call.
weight : array_like, shape (C_out, C_in / groups, *kernel)
    Filters of the forward call.
grad_output : array_like
    Gradient with respect to the forward output.
{parameters}
needs : collection of {{"input", "weight", "bias"}}, default all three
    Which gradients to compute.

Returns
-------
grad_input, grad_weight, grad_bias : ndarray or None
    ``None`` for each gradient not in ``needs``.

Examples
--------
>>> import numpy as np
>>> import fastconv
>>> {x_line}
>>> {w_line}
>>> g = np.ones_like(fastconv.conv{d}d(x, w))
>>> gx, gw, gb = fastconv.conv{d}d_backward(x, w, g)
>>> float(gb[0]) == g.size
True
>>> fastconv.conv{d}d_backward(x, w, g, needs=("bias",))[:2]
(None, None)
"""

_TRANSPOSE_DOC = """{d}-D transposed convolution (the adjoint of :func:`conv{d}d`).

Output size per dim: ``(n - 1) * stride - pad_low - pad_high + dilation * (k - 1) +
output_padding + 1``.

Parameters
----------
x : array_like, shape (N, C_in, *spatial) or (C_in, *spatial)
    Input; ``(N, *spatial, C_in)`` with ``channels_last=True``.
weight : array_like, shape (C_in, C_out / groups, *kernel)
    Filters, laid out as in PyTorch.
bias : array_like, shape (C_out,), optional
    Added to every output position.
stride : int or tuple of {d} ints, default 1
    Stride of the forward convolution this is the adjoint of.
padding : int, tuple, or {{"valid", "same", "full"}}, default 0
    Pads of that forward convolution (removed from the output); ``"same"`` uses the pads a
    forward conv of an input ``n * stride`` long would get.
output_padding : int or tuple of {d} ints, default 0
    Extra size at the high end, in ``[0, max(stride, dilation))``.
groups : int, default 1
    Channel groups.
dilation : int or tuple of {d} ints, default 1
    Spacing between kernel taps.
channels_last : bool, default False
    Data layout ``(N, *spatial, C)``.
out : ndarray, optional
    C-contiguous array of exactly the result's shape and dtype to write into.

Returns
-------
ndarray
    The transposed convolution.

Examples
--------
>>> import numpy as np
>>> import fastconv
>>> {x_line}
>>> {w_line}
>>> y = fastconv.conv_transpose{d}d(x, w, stride=2, padding=1, output_padding=1)
>>> y.shape[2:] == tuple(2 * n for n in x.shape[2:])
True
"""


def _public(function: Callable, name: str, doc: str, d: int) -> Callable:
    function.__name__ = function.__qualname__ = name
    function.__doc__ = _doc(doc, d)
    function.__module__ = __name__
    return function


def _make_conv(d: int) -> Callable:
    def conv(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
             stride: IntOrTuple = 1, padding: Padding = 0, dilation: IntOrTuple = 1,
             groups: int = 1, padding_mode: str = "zeros", channels_last: bool = False,
             out: np.ndarray | None = None) -> np.ndarray:
        return _forward(d, x, weight, bias, stride, padding, dilation, groups, padding_mode,
                        channels_last, out)

    return _public(conv, f"conv{d}d", _CONV_DOC, d)


def _make_input(d: int) -> Callable:
    def conv_input(input_shape: tuple[int, ...], weight: ArrayLike, grad_output: ArrayLike,
                   stride: IntOrTuple = 1, padding: Padding = 0, dilation: IntOrTuple = 1,
                   groups: int = 1, padding_mode: str = "zeros",
                   channels_last: bool = False) -> np.ndarray:
        return _input_grad(d, input_shape, weight, grad_output, stride, padding, dilation,
                           groups, padding_mode, channels_last)

    return _public(conv_input, f"conv{d}d_input", _INPUT_DOC, d)


def _make_weight(d: int) -> Callable:
    def conv_weight(x: ArrayLike, weight_shape: tuple[int, ...], grad_output: ArrayLike,
                    stride: IntOrTuple = 1, padding: Padding = 0, dilation: IntOrTuple = 1,
                    groups: int = 1, padding_mode: str = "zeros",
                    channels_last: bool = False) -> np.ndarray:
        return _weight_grad(d, x, weight_shape, grad_output, stride, padding, dilation,
                            groups, padding_mode, channels_last)

    return _public(conv_weight, f"conv{d}d_weight", _WEIGHT_DOC, d)


def _make_backward(d: int) -> Callable:
    def conv_backward(x: ArrayLike, weight: ArrayLike, grad_output: ArrayLike,
                      stride: IntOrTuple = 1, padding: Padding = 0, dilation: IntOrTuple = 1,
                      groups: int = 1, padding_mode: str = "zeros",
                      channels_last: bool = False,
                      needs: tuple[str, ...] = ("input", "weight", "bias")
                      ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        wanted = _args.needs_spec(needs)
        return _backward(d, x, None, weight, None, grad_output, stride, padding, dilation,
                         groups, padding_mode, channels_last, wanted)

    return _public(conv_backward, f"conv{d}d_backward", _BACKWARD_DOC, d)


def _make_transpose(d: int) -> Callable:
    def conv_transpose(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
                       stride: IntOrTuple = 1, padding: Padding = 0,
                       output_padding: IntOrTuple = 0, groups: int = 1,
                       dilation: IntOrTuple = 1, channels_last: bool = False,
                       out: np.ndarray | None = None) -> np.ndarray:
        return _transpose(d, x, weight, bias, stride, padding, output_padding, groups,
                          dilation, channels_last, out)

    return _public(conv_transpose, f"conv_transpose{d}d", _TRANSPOSE_DOC, d)


conv1d, conv2d, conv3d = (_make_conv(d) for d in (1, 2, 3))
conv1d_input, conv2d_input, conv3d_input = (_make_input(d) for d in (1, 2, 3))
conv1d_weight, conv2d_weight, conv3d_weight = (_make_weight(d) for d in (1, 2, 3))
conv1d_backward, conv2d_backward, conv3d_backward = (_make_backward(d) for d in (1, 2, 3))
conv_transpose1d, conv_transpose2d, conv_transpose3d = (_make_transpose(d) for d in (1, 2, 3))
