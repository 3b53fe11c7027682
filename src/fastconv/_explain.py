"""What fastconv will do for a call: the algorithm of each pass, its tiles, FLOPs and workspace.

:func:`explain` runs the same validation and plan-layer functions (:mod:`fastconv._plan`)
as the convolution functions, without compiling or running anything, so users can see why a
layer is fast or slow and what extra memory it needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from . import (
    _args,
    _dense,
    _dense_weight,
    _depthwise,
    _plan,
    _planar,
    _pointwise,
    _winograd,
)
from ._args import ConvSpec
from ._simd import lanes_for
from .convolution import (
    _on_planes,
    _spread_spec,
    adjoint_choice,
    channels_last_depthwise,
    channels_last_depthwise_adjoint,
    channels_last_depthwise_weight,
    column_phases,
    dense_tiles,
    dense_weight_chunks,
    depthwise_rows_per_task,
    forward_choice,
    planar_kernel_shape,
    planar_rows_per_task,
    runnable_choice,
    single_phase,
    weight_choice,
    winograd_call,
)

__all__ = ["PassPlan", "explain"]


@dataclass(frozen=True)
class PassPlan:
    """The plan of one pass of a convolution.

    Attributes
    ----------
    name : str
        ``"forward"``, ``"grad_input"`` or ``"grad_weight"`` (for a transposed convolution,
        ``"forward"`` is the transposed convolution itself).
    algorithm : str
        ``"dense"`` (SIMD register tiles over channels), ``"planar"`` (channels-first, SIMD
        along the last dimension), ``"gather"`` (general kernel: any padding mode and
        stride), ``"depthwise"`` (depthwise layers, SIMD across channels), ``"winograd"``
        (3x3 stride-1 layers, Winograd F(2x2, 3x3)), or ``"phases/dense"`` /
        ``"phases/planar"`` / ``"phases/depthwise"`` / ``"phases/winograd"`` (an adjoint
        split into one stride-1 forward convolution per stride phase), or
        ``"spread/depthwise"`` (a strided depthwise adjoint as one stride-1 convolution of
        the output gradient spread with zeros).
    detail : str
        Tiles, blocks, phases and layout copies, in words.
    flops : int
        Floating-point operations (two per multiply-add).
    workspace_bytes : int
        Memory allocated beyond the inputs and the result, upper estimate (layout copies,
        packed weights, per-thread tiles, partial sums).
    """

    name: str
    algorithm: str
    detail: str
    flops: int
    workspace_bytes: int


def _reads_padding(spec: ConvSpec) -> bool:
    """Whether the windows of a convolution reach into its padding."""
    windows = [_plan.read_window(out, taps, stride, dilation, pad[0]) for out, taps, stride,
               dilation, pad in zip(spec.out_sizes, spec.kernel, spec.stride, spec.dilation,
                                    spec.pads)]
    return any(low or high for low, high in _plan.pad_margins(windows, spec.in_sizes))


def _forward_plan(spec: ConvSpec, itemsize: int, dtype: np.dtype, batch: int,
                  planar_layout: bool, name: str, algorithm: str | None = None) -> PassPlan:
    """Plan of a forward convolution (also one stride phase of an adjoint).

    ``algorithm``: the kernel (default: :func:`forward_choice`'s).
    """
    if algorithm is None:
        algorithm = forward_choice(spec, dtype, planar_layout)
    outputs = batch * spec.c_out * math.prod(spec.out_sizes)
    inputs = batch * spec.c_in * math.prod(spec.in_sizes)
    taps = math.prod(spec.kernel)
    flops = 2 * outputs * (spec.c_in // max(spec.groups, 1)) * taps
    weights = spec.c_out * (spec.c_in // max(spec.groups, 1)) * taps
    threads = numba.config.NUMBA_NUM_THREADS
    if algorithm == "winograd":
        plan = winograd_call(spec, dtype, batch, planar_layout)
        if plan is None:  # the transformed weights and scratch do not fit: direct kernel
            return _forward_plan(spec, itemsize, dtype, batch, planar_layout, name,
                                 runnable_choice(spec, dtype, batch, planar_layout, algorithm))
        rows = int(plan.dims[_winograd.ROWS])
        volume = spec.ndim == 3
        scheme = ("F(2x2x2, 3x3x3): 64 matrix products per 2x2x2 outputs (3.375x" if volume
                  else "F(2x2, 3x3): 16 matrix products per 2x2 outputs (2.25x")
        planes = " (of 4 planes)" if volume else ""
        weights = ("weights transformed once per call" if plan.chunks == 1 else
                   f"output channels in {plan.chunks} chunks of {plan.chunk_channels}, each "
                   "transforming its weights, then the input again (the transformed weights "
                   "of all of them do not fit the spare memory)")
        detail = (f"Winograd {scheme} fewer multiply-adds) in register tiles of "
                  f"{_winograd.TILE_P} tiles x {plan.transformed_shape[-1]} output channels; "
                  f"{weights}; each task copies the {2 * rows + 2} "
                  f"input rows{planes} of its {rows} row(s) of tiles into a small zero-padded "
                  "channels-last tile and transforms them; output written in place")
        if any(d > 1 for d in spec.dilation):
            detail += (f"; dilated: one convolution per row and column phase "
                       f"({math.prod(spec.dilation)} of them)")
        return PassPlan(name, algorithm, detail, flops, plan.workspace_bytes)
    if algorithm == "dense":
        packed_shape = _dense.packed_shape(spec.c_out, spec.c_in, _plan.to_3d(spec.kernel, 1),
                                           dtype)
        block = packed_shape[-1]  # one vector of output channels for narrow layers
        packed = math.prod(packed_shape)
        packing = f"weights packed in blocks of {block}"
        tiles = dense_tiles(spec, dtype, batch) if planar_layout else None
        if _dense.self_packs(packed_shape, dtype) and not (tiles and tiles[0]):
            packed = threads * math.prod(packed_shape[1:])  # one block per thread at a time
            packing = f"weights packed by each thread, a block of {block} at a time"
        layout, copies = "", 0
        if planar_layout and (_dense.tiles_apply(packed_shape, dtype) or (tiles and tiles[0])):
            layout = ("; channels-first input read in place: each task copies the input rows "
                      "of its block of output rows into a small padded channels-last tile; "
                      "output written in place")
            copies = (math.prod(tiles[1].tiles_shape) if tiles
                      else threads * _dense._TILE_BYTES // itemsize)
        elif tiles is not None:
            layout = ("; channels-first input read in place: each task copies the input rows "
                      "of its block of output rows into a small padded channels-last tile and "
                      "runs one block of output channels on it; output written in place")
            copies = math.prod(tiles[1].tiles_shape)
        elif planar_layout:
            layout = "; channels-first input copied to channels-last, output written in place"
            copies = inputs
        elif _dense.tiles_channels_last(packed_shape, dtype) and _reads_padding(spec):
            layout = ("; channels-last input read through per-task tiles: each task copies "
                      "the input rows of its block of output rows into a small zero-padded "
                      "tile (no window gathers at the borders)")
            copies = threads * _dense._TILE_BYTES // itemsize
        detail = (f"register tiles of {_dense.TILE_P} pixels x {block} output channels, "
                  f"{packing}{layout}")
        return PassPlan(name, algorithm, detail, flops, (packed + copies) * itemsize)
    if algorithm == "pointwise":
        block = _pointwise.CHANNEL_BLOCK
        packed = spec.groups * -(-(spec.c_out // spec.groups) // block) * block * \
            (spec.c_in // spec.groups)
        strip = (spec.c_in // spec.groups) * 2 * lanes_for(dtype)
        detail = (f"matrix product on the channels-first data in place: register tiles of "
                  f"{block} output channels x {2 * lanes_for(dtype)} pixels")
        return PassPlan(name, algorithm, detail, flops, (packed + threads * strip) * itemsize)
    if algorithm == "depthwise":
        return _depthwise_plan(spec, itemsize, dtype, batch, name, flops)
    if algorithm == "planar":
        _, in_group, planes, taps1, taps2 = planar_kernel_shape(spec)
        phases = column_phases(spec)
        rows = _plan.to_3d(spec.out_sizes, 1)
        width = _plan.planar_tile_width(rows[2], taps2, phases.step, lanes_for(dtype))
        row_block = planar_rows_per_task(spec, dtype, (batch, spec.c_out, *rows),
                                         batch * spec.groups * rows[0], halo=True)
        span = _plan.planar_tile_rows(row_block, _plan.to_3d(spec.stride, 1)[1], taps1,
                                      _plan.to_3d(spec.dilation, 1)[1])
        tile = in_group * planes * span * width
        out_group = spec.c_out // spec.groups
        blocks = out_group // _planar.CHANNEL_BLOCK
        rest = out_group - blocks * _planar.CHANNEL_BLOCK
        triples = -(-rest // _planar.TRIPLE) if rest >= 2 else 0
        # rows of at most two vectors: the triples run two rows x two vectors, and four
        # leftover channels one block of four (see _planar._planar_conv_tasks)
        narrow = rows[2] <= 2 * lanes_for(dtype) and row_block >= 2
        if narrow and rest == 4 and _planar.QUAD_STRIPS:
            leftover = ", the 4 leftover output channels of each group as one block x two rows x " \
                "two vectors"
        elif triples:
            leftover = (f", {triples} block(s) of {_planar.TRIPLE} output channels x "
                        + ("two rows x two vectors" if narrow else
                           f"{_planar.STRIP_VECTORS} vectors") + " per group")
        else:
            leftover = ""
        split = (f", each input row split into {phases.phases} column phases (columns "
                 f"{spec.stride[-1]} apart; {taps2}-column filters)"
                 if spec.stride[-1] > 1 else "")
        # a single input channel's 3x3 filter with unit row steps walks down the tile (see
        # _planar._planar_conv_tasks; or reads the input in place)
        walks = (in_group * planes == 1 and taps1 == taps2 == 3
                 and _plan.to_3d(spec.stride, 1)[1] == 1
                 and _plan.to_3d(spec.dilation, 1)[1] == 1)
        compute = (f"each output channel walks down the tile two vectors of columns at a "
                   f"time, each input row loaded once for the {taps1} output rows it feeds"
                   if walks else f"strips of two rows x {_planar.STRIP_VECTORS} vectors")
        detail = (f"padded input tiles of {in_group} channel(s) x {span} rows x {width} "
                  f"columns{split}, {row_block} output rows per task, {compute}"
                  + (f", {blocks} block(s) of {_planar.CHANNEL_BLOCK} output channels per "
                     "group" if blocks else "")
                  + leftover)
        return PassPlan(name, algorithm, detail, flops, (threads * tile + weights) * itemsize)
    detail = "general gather kernel (padding map evaluated per position, scalar)"
    return PassPlan(name, "gather", detail, flops, (weights + threads * 4096) * itemsize)


def _depthwise_plan(spec: ConvSpec, itemsize: int, dtype: np.dtype, batch: int, name: str,
                    flops: int, spread: tuple[int, ...] = (), channels_last: bool = False
                    ) -> PassPlan:
    """Plan of ``spec`` on the depthwise kernel.

    An adjoint's spread gradient: ``spread``; channels-last data in place:
    ``channels_last``.
    """
    lanes = lanes_for(dtype)
    planes_shape = (batch, spec.c_out, *_plan.to_3d(spec.out_sizes, 1))
    row_block = depthwise_rows_per_task(spec, dtype, planes_shape)
    taps0, taps1, taps2 = _plan.to_3d(spec.kernel, 1)
    stride1, stride2 = _plan.to_3d(spec.stride, 1)[1:]
    dilation1, dilation2 = _plan.to_3d(spec.dilation, 1)[1:]
    span = _plan.planar_tile_rows(row_block, stride1, taps1, dilation1)
    width = _depthwise.tile_width(planes_shape[4], taps2, stride2, dilation2)
    tile = taps0 * span * width * lanes + (row_block * planes_shape[4] + 16) * lanes
    packed = -(-spec.c_out // lanes) * lanes * (math.prod(spec.kernel) + 1)
    source = "input rows"
    if spread:
        source = (f"output gradient's rows, spread with zeros (every {'x'.join(map(str, spread))}"
                  f"-th row and column: one stride-1 convolution with the flipped taps),")
    copy, back = (("one vector load per pixel", "stored in place") if channels_last
                  else (f"{lanes}x{lanes} transposes", "transposed back"))
    detail = (f"a vector lane per channel: tasks of {lanes} channels x {row_block} output "
              f"rows copy their {source} into a padded channels-last tile of {span} "
              f"rows x {width} columns ({copy}), one vector multiply-add per tap and "
              f"{_depthwise.PIXELS} pixels at a time, results {back}")
    threads = numba.config.NUMBA_NUM_THREADS
    return PassPlan(name, "spread/depthwise" if spread else "depthwise", detail, flops,
                    (threads * tile + packed) * itemsize)


def _adjoint_plan(spec: ConvSpec, itemsize: int, dtype: np.dtype, batch: int,
                  planar_layout: bool, name: str) -> PassPlan:
    """Plan of the adjoint of ``spec`` (input gradient or transposed convolution)."""
    algorithm = adjoint_choice(spec, dtype, planar_layout)
    flops = 2 * batch * spec.c_out * math.prod(spec.out_sizes) * \
        (spec.c_in // max(spec.groups, 1)) * math.prod(spec.kernel)
    if algorithm == "gather":
        weights = spec.c_out * (spec.c_in // max(spec.groups, 1)) * math.prod(spec.kernel)
        detail = "general gather kernel inverting the padding map and stride (scalar)"
        return PassPlan(name, "gather", detail, flops, weights * itemsize)
    if algorithm == "spread":
        return _depthwise_plan(_spread_spec(spec), itemsize, dtype, batch, name, flops,
                               spec.stride)
    if algorithm == "winograd":
        phase = single_phase(spec)
        if winograd_call(phase, dtype, batch, planar_layout) is not None:
            plan = _forward_plan(phase, itemsize, dtype, batch, planar_layout, name, algorithm)
            detail = ("1 stride phase(s), a stride-1 forward convolution with the flipped "
                      f"taps on the winograd kernel: {plan.detail}")
            return PassPlan(name, "phases/winograd", detail, flops, plan.workspace_bytes)
        # no room for its workspace: the direct kernel
        algorithm = adjoint_choice(spec, dtype, planar_layout, winograd_allowed=False)
    phases = math.prod(spec.stride)
    detail = (f"{phases} stride phase(s), each a stride-1 forward convolution with the "
              f"flipped taps of that phase on the {algorithm} kernel")
    if algorithm == "planar" and spec.stride[-1] > 1:
        detail = (f"{phases // spec.stride[-1]} row phase(s), each a stride-1 forward "
                  f"convolution with the flipped taps of its {spec.stride[-1]} column phases "
                  "at once (a channel per column phase) on the planar kernel, interleaved "
                  "into whole rows of the result")
    # the dense kernel reads a channels-last copy of channels-first gradients (a single
    # phase in window mode: per-task tiles instead); both kernels write every phase in
    # place (strided planar phases through per-task row buffers)
    layout = batch * spec.c_out * math.prod(spec.out_sizes) \
        if algorithm == "dense" and planar_layout else 0
    tiles = numba.config.NUMBA_NUM_THREADS * _dense._TILE_BYTES // itemsize
    if layout and phases == 1:
        packed_shape = _dense.packed_shape(spec.c_in, spec.c_out, _plan.to_3d(spec.kernel, 1),
                                           dtype)
        if _dense.tiles_apply(packed_shape, dtype):
            layout = tiles
            detail += " (its input read in place through per-task tiles)"
        elif (rows := _single_phase_tiles(spec, dtype, batch)) is not None:
            layout = math.prod(rows[1].tiles_shape)
            if rows[0]:
                layout += math.prod(packed_shape)
            detail += " (its input read in place through per-task tiles" + (
                ", its weights packed whole)" if rows[0] else ", a block of output channels "
                "each)")
    elif layout:
        # every phase's weights packed (as many as the kernel's) and tiles, when they fit
        # the spare memory; else the channels-last copy (see _PhasePass._tiled_phases)
        block = _dense.block_size(dtype)
        packed = -(-spec.c_in // block) * block * spec.c_out * math.prod(spec.kernel)
        layout = max(layout, packed + tiles)
        detail += ("; all phases in one launch, their input read in place through per-task "
                   "tiles when every phase's packed weights and the tiles fit the spare "
                   "memory, else from a channels-last copy, a part of the batch at a time")
    return PassPlan(name, f"phases/{algorithm}", detail, flops, layout * itemsize)


def _single_phase_tiles(spec: ConvSpec, dtype: np.dtype, batch: int
                        ) -> tuple[bool, _dense.TiledPlan] | None:
    """:func:`dense_tiles` of the one stride phase of a stride-1 adjoint, or None."""
    phase = single_phase(spec)
    return None if phase is None else dense_tiles(phase, dtype, batch)


def _weight_plan(spec: ConvSpec, itemsize: int, dtype: np.dtype, batch: int,
                 planar_layout: bool) -> PassPlan:
    """Plan of the weight gradient of ``spec``."""
    algorithm = weight_choice(spec, dtype, planar_layout)
    in_group = spec.c_in // max(spec.groups, 1)
    weights = spec.c_out * in_group * math.prod(spec.kernel)
    outputs = batch * spec.c_out * math.prod(spec.out_sizes)
    inputs = batch * spec.c_in * math.prod(spec.in_sizes)
    flops = 2 * outputs * in_group * math.prod(spec.kernel)
    if algorithm == "depthwise":
        lanes = lanes_for(dtype)
        planes_shape = (batch, spec.c_out, *_plan.to_3d(spec.out_sizes, 1))
        rows = depthwise_rows_per_task(spec, dtype, planes_shape, threads=0)
        detail = (f"a vector lane per channel: tasks of {lanes} channels copy the input rows "
                  f"of {rows} output rows at a time into a padded channels-last tile and the "
                  f"output gradient's pixels beside it ({lanes}x{lanes} transposes), then "
                  f"dot products of 8 taps per gradient load, shape-fixed reduction chunks")
        return PassPlan("grad_weight", algorithm, detail, flops, 17 * weights * itemsize)
    if algorithm == "dense":
        block = _dense.block_size(dtype)
        taps = _plan.to_3d(spec.kernel, 1)
        _, tiles = _dense_weight.task_split(spec.c_in, spec.c_out, taps,
                                            lanes_for(dtype), itemsize)
        grad_shape = (batch, *_plan.to_3d(spec.out_sizes, 1), spec.c_out)
        chunks = dense_weight_chunks(spec, dtype, tiles, inputs, grad_shape)
        tap_rows = _dense_weight.tap_rows_per_task(spec.c_in, taps[1], taps[2])
        tap_planes = _dense_weight.tap_planes_per_task(spec.c_in, *taps)
        per_task = ("all taps" if tap_planes > 1 else
                    "all tap rows" if tap_rows > 1 else "per tap row")
        detail = (f"{per_task}, matrix products "
                  f"over pixels in register tiles of {block} output channels x "
                  f"{_dense_weight.IN_TILE} (tap, input channel) entries, operands read in "
                  f"place (windows of {_dense_weight.SPAN} pixels copied per task), bias "
                  f"fused; {chunks} reduction chunk(s)")
        return PassPlan("grad_weight", algorithm, detail, flops,
                        (chunks * weights if chunks > 1 else 0) * itemsize)
    if algorithm == "planar":
        phases = column_phases(spec).phases
        detail = ("per output channel, vector dot products of gradient rows with padded "
                  "input rows (8 taps per gradient load"
                  + (f"; {phases} column phases per input row" if spec.stride[-1] > 1 else "")
                  + "), shape-fixed reduction chunks")
        return PassPlan("grad_weight", algorithm, detail, flops, 17 * weights * itemsize)
    detail = "general kernel, one task per (chunk, group, tap, input-channel block)"
    return PassPlan("grad_weight", "gather", detail, flops, (outputs + 16 * weights) * itemsize)


def explain(x_shape: tuple[int, ...], weight_shape: tuple[int, ...], *, stride: object = 1,
            padding: object = 0, dilation: object = 1, groups: object = 1,
            padding_mode: object = "zeros", channels_last: bool = False,
            transposed: bool = False, output_padding: object = 0,
            dtype: object = np.float32, contiguous: bool = True) -> tuple[PassPlan, ...]:
    """Explain how fastconv runs a convolution of these shapes: one plan per pass.

    Parameters
    ----------
    x_shape : tuple of int
        Shape of the input (``(N, C_in, *spatial)``, unbatched, or channels-last).
    weight_shape : tuple of int
        Shape of the weights, ``(C_out, C_in / groups, *kernel)`` (for ``transposed``,
        ``(C_in, C_out / groups, *kernel)`` as :func:`fastconv.conv_transpose2d` takes).
    stride, padding, dilation, groups, padding_mode, channels_last, output_padding
        As in :func:`fastconv.conv2d` and :func:`fastconv.conv_transpose2d`
        (``padding_mode`` applies to non-transposed convolutions only).
    transposed : bool, default False
        Explain ``conv_transpose{d}d`` instead of ``conv{d}d``.
    dtype : dtype-like, default float32
        Data type of the computation.
    contiguous : bool, default True
        Whether the arrays will be C-contiguous (the planar kernels need channels-first
        contiguous data).

    Returns
    -------
    tuple of PassPlan
        Plans of the forward pass, the input gradient and the weight gradient.

    Examples
    --------
    >>> import fastconv
    >>> plans = fastconv.explain((8, 256, 56, 56), (256, 1, 3, 3), padding=1, groups=256)
    >>> [(p.name, p.algorithm) for p in plans]
    [('forward', 'planar'), ('grad_input', 'phases/planar'), ('grad_weight', 'planar')]
    >>> plans[0].flops
    115605504
    >>> [p.algorithm for p in fastconv.explain((8, 64, 56, 56), (128, 64, 3, 3), stride=2,
    ...                                        padding=1)]
    ['dense', 'phases/dense', 'dense']
    """
    x_shape = _args.shape_spec("x_shape", x_shape)
    weight_shape = _args.shape_spec("weight_shape", weight_shape)
    ndim = len(weight_shape) - 2
    if ndim not in (1, 2, 3):
        raise ValueError(f"weight_shape={weight_shape} must have 3 to 5 entries "
                         "(C_out, C_in / groups, *kernel) for 1-D to 3-D convolution")
    layout = _args.flag("channels_last", channels_last)
    data = _args.data_shape("x_shape", x_shape, ndim, layout)
    kind = np.dtype(dtype)
    if kind not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype={dtype!r} is not supported; use float32 or float64")
    if transposed:
        spec = _args.transpose_spec(ndim, data, weight_shape, stride, padding, output_padding,
                                    groups, dilation)
    else:
        spec = _args.conv_spec(ndim, data, weight_shape, stride, padding, dilation, groups,
                               padding_mode)
    channels = (spec.c_in, spec.c_out)
    planar = bool(contiguous) and (not data.channels_last or all(c == 1 for c in channels))
    itemsize, batch = kind.itemsize, data.batch
    copied = batch * (spec.c_in * math.prod(spec.in_sizes)
                      + spec.c_out * math.prod(spec.out_sizes)) * itemsize

    def on_layout(plan, choice, name):
        return _on_layout(lambda on_planes: plan(spec, itemsize, kind, batch, on_planes, name),
                          lambda on_planes: choice(spec, kind, on_planes), planar, copied)

    forward = on_layout(_forward_plan, forward_choice, "grad_input" if transposed
                        else "forward")
    adjoint = on_layout(_adjoint_plan, adjoint_choice, "forward" if transposed
                        else "grad_input")
    flops = 2 * batch * spec.c_out * math.prod(spec.out_sizes) * math.prod(spec.kernel)
    # the passes that run on C-contiguous channels-last data in place (see
    # fastconv.convolution._planned and _planned_weight)
    in_place = not planar and data.channels_last and contiguous
    if in_place and channels_last_depthwise(spec, kind):
        forward = _depthwise_plan(spec, itemsize, kind, batch, forward.name, flops,
                                  channels_last=True)
    if in_place and channels_last_depthwise_adjoint(spec, kind):
        adjoint = _depthwise_plan(_spread_spec(spec), itemsize, kind, batch, adjoint.name,
                                  flops, channels_last=True)
    weight = _on_layout(lambda on_planes: _weight_plan(spec, itemsize, kind, batch, on_planes),
                        lambda on_planes: weight_choice(spec, kind, on_planes), planar, copied)
    if in_place and channels_last_depthwise_weight(spec, kind):
        weight = _weight_plan(spec, itemsize, kind, batch, True)
        weight = PassPlan(weight.name, weight.algorithm, weight.detail + "; the channels-last "
                          "data read in place (a vector load per pixel, no transposes)",
                          weight.flops, weight.workspace_bytes)
    return (adjoint, forward, weight) if transposed else (forward, adjoint, weight)


def _on_layout(plan: Callable[[bool], PassPlan], choice: Callable[[bool], str],
               planar: bool, copied: int) -> PassPlan:
    """A pass's plan on the call's layout, or on copies of its data as channels-first planes.

    ``plan(planar_layout)`` and ``choice(planar_layout)``: the pass's plan and algorithm on
    planes (True) or on the call's layout; the copies, ``copied`` bytes (the pass's input
    and output), are made where only they spare the pass the gather kernel
    (:func:`fastconv.convolution._on_planes`).
    """
    if planar or not _on_planes(choice):
        return plan(planar)
    on_planes = plan(True)
    detail = (f"{on_planes.detail}; the data copied to channels-first planes and back (on "
              "their own layout the gather kernel would run)")
    return PassPlan(on_planes.name, on_planes.algorithm, detail, on_planes.flops,
                    on_planes.workspace_bytes + copied)
