"""Public convolution functions: argument handling, layout, and dispatch to the kernels.

Each public function normalises and validates its arguments (:mod:`fastconv._args`),
asks the plan layer (:mod:`fastconv._plan`) for geometry, tiles and chunking, takes
free strided views of the data in the engine's canonical ``(N, D0, D1, D2, C)`` order,
and calls one compiled kernel (:mod:`fastconv._kernels`). No loops run here.

All of that except the views and the kernel call depends only on the shapes and dtypes of
the arrays and on the other arguments, so it is done once per distinct call and kept as a
*call plan* (see "call plans" below): a repeated call looks its plan up, packs the
weights, allocates its result and runs the kernel. Small problems run on the calling
thread: on the dense kernel in one compiled function (:func:`fastconv._dense.small_conv`)
where it applies, else on serial twins of the other kernels.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, NamedTuple

import numba
import numpy as np

from . import (
    _args,
    _dense,
    _dense_weight,
    _depthwise,
    _jit,
    _kernels,
    _plan,
    _planar,
    _pointwise,
    _runtime,
    _winograd,
    _workspace,
)
from ._args import ConvSpec, DataShape
from ._simd import lanes_for

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_input", "conv2d_input", "conv3d_input",
    "conv1d_weight", "conv2d_weight", "conv3d_weight",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
]

ArrayLike = Any
IntOrTuple = int | tuple[int, ...]
Padding = int | str | tuple[int | tuple[int, int], ...]


# ---------------------------------------------------------------------------- layout
def _layout(ndim: int, data: DataShape) -> tuple[tuple, tuple[int, ...] | None]:
    """Index and axis order taking an array of layout ``data`` to the canonical view.

    ``array[index].transpose(axes)`` (no transpose when ``axes`` is None) is the strided
    ``(N, D0, D1, D2, C)`` view of an array of that batching and layout; see
    :func:`_canonical`.
    """
    lead = (np.newaxis,) * (3 - ndim)
    batch = (slice(None),) if data.batched else (np.newaxis,)
    if data.channels_last:
        return batch + lead, None
    return batch + (slice(None),) + lead, (0, 2, 3, 4, 1)


def _view(array: np.ndarray, layout: tuple[tuple, tuple[int, ...] | None]) -> np.ndarray:
    """Canonical view of ``array`` from its :func:`_layout` (no copy)."""
    index, axes = layout
    view = array[index]
    return view if axes is None else view.transpose(axes)


def _canonical(array: np.ndarray, ndim: int, data: DataShape) -> np.ndarray:
    """A strided view of ``array`` in the kernels' ``(N, D0, D1, D2, C)`` order (no copy)."""
    return _view(array, _layout(ndim, data))


def _canonical_shape(ndim: int, data: DataShape, channels: int,
                     sizes: tuple[int, ...]) -> tuple[int, ...]:
    """Canonical view shape of an array with ``data``'s batching, ``channels`` and ``sizes``."""
    return (data.batch, *_plan.to_3d(sizes, 1), channels)


def _destination(shape: tuple[int, ...], dtype: np.dtype, out: np.ndarray | None,
                 *inputs: np.ndarray) -> np.ndarray:
    """Array the kernel writes: ``out`` itself unless it overlaps an input."""
    if out is not None and not any(np.may_share_memory(out, a) for a in inputs):
        return out
    return np.empty(shape, dtype)


def _in_dtype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` itself when it already has ``dtype`` (skipping astype), else a converted copy."""
    return array if array.dtype == dtype else array.astype(dtype)


def _finish(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Copy into ``out`` when the kernel had to write elsewhere; return what the user gets."""
    if out is None or out is result:
        return result
    out[...] = result
    return out


# ---------------------------------------------------------------------------- passes
#: Algorithm override for tests and benchmarks: None (the plan decides), "dense", "planar",
#: "pointwise", "depthwise", "winograd" or "gather"; applies to the forward pass and to the
#: adjoint (input gradient, transposed convolution) where the algorithm can run them, else
#: the gather kernel does.
FORCE_FORWARD_ALGORITHM: str | None = None

#: Weight-gradient override for tests and benchmarks: None, "dense", "planar" or "gather".
FORCE_WEIGHT_ALGORITHM: str | None = None

#: Bytes a Winograd call allocates besides its planned workspace (its Python objects, views
#: and small arrays: 8 KB measured by ``tools/peak_memory.py`` on the 256-channel layer),
#: kept out of the spare memory its workspace may take.
WINOGRAD_CALL_BYTES = 16 * 1024

Pass = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", np.ndarray], None]


def _geometry(spec: ConvSpec, adjoint: bool) -> tuple[np.ndarray, np.ndarray]:
    """Geometry records of ``spec`` and the pair capacity of each dim (read-only)."""
    geometry = spec.geometry(adjoint)
    capacity = np.array([_plan.pair_capacity(row) for row in geometry.tolist()], np.int64)
    geometry.flags.writeable = False
    capacity.flags.writeable = False
    return geometry, capacity


class _GatherPass:
    """The gather kernel writing every element of a canonical ``dest`` (a planned pass).

    Calling it packs the weights as ``(G, T0, T1, T2, Ig, Og)`` (for the forward pass the
    kernel reads input channels and writes output channels; for the adjoint the roles swap),
    makes the bias vector and runs :func:`fastconv._kernels.gather_conv`.
    """

    __slots__ = ("blocks", "capacity", "dtype", "empty", "geometry", "kernel", "order",
                 "pack_shape", "task_at", "zero_bias")

    def __init__(self, spec: ConvSpec, adjoint: bool, dtype: np.dtype,
                 dest_shape: tuple[int, ...]) -> None:
        g = spec.groups
        self.dtype = dtype
        self.pack_shape = (g, spec.c_out // g, spec.c_in // g, *_plan.to_3d(spec.kernel, 1))
        self.order = (0, 3, 4, 5, 1, 2) if adjoint else (0, 3, 4, 5, 2, 1)
        # read-only zeros shared by the calls without bias (the kernel only reads its bias)
        self.zero_bias = np.zeros(spec.c_in if adjoint else spec.c_out, dtype)
        self.zero_bias.flags.writeable = False
        self.empty = math.prod(dest_shape) == 0
        in_group, out_group = (self.pack_shape[1], self.pack_shape[2]) if adjoint else (
            self.pack_shape[2], self.pack_shape[1])
        self.blocks = _plan.gather_blocks(*dest_shape[:4], g, in_group, out_group,
                                          dtype.itemsize)
        self.geometry, self.capacity = _geometry(spec, adjoint)
        work = math.prod(dest_shape) * math.prod(spec.kernel) * in_group
        self.kernel = (_kernels.gather_conv_serial if work <= _kernels.SERIAL_MAX_WORK
                       else _kernels.gather_conv)
        self.task_at = 0
        if not self.empty:
            _jit.ensure_compiled(self.kernel, _kernels.gather_signature, dtype)
            self.task_at = _kernels.gather_task_address(dtype)

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray) -> None:
        if self.empty:
            return
        grouped = weight.astype(self.dtype, copy=False).reshape(self.pack_shape)
        packed = np.ascontiguousarray(grouped.transpose(self.order))
        if bias is None:
            bias_vector = self.zero_bias
        else:
            bias_vector = np.ascontiguousarray(bias, dtype=self.dtype)
        self.kernel(src, packed, bias_vector, dest, self.geometry, self.capacity, *self.blocks,
                    self.task_at)


class _DensePass:
    """A forward convolution (or a stride-1 adjoint) on the SIMD micro-kernel (a planned pass).

    Calling it prepares the weights (:meth:`prepare`) and runs
    :func:`fastconv._dense.run_dense` on the destination in place (a channels-first output
    is written through its strides). Large weights are read in place by the row-mode kernel,
    each thread packing the channel block it works on (no packed copy of all the weights);
    others are packed once per call. A channels-first input of a window-mode layer (small
    weights, :func:`fastconv._dense.tiles_apply`) is read in place by tasks that each copy
    the input rows of their block of output rows into a small padded tile
    (:func:`fastconv._dense.run_tiled`: no layout copy of the batch, one launch); so is a
    channels-last input whose windows read padding, where that beats gathering the border
    windows (:func:`fastconv._dense.tiles_channels_last`). Other
    inputs the kernel cannot read in place are copied to channels-last a part of the batch
    at a time, as few parts as fit the call's spare memory (:func:`_spare_bytes`, at most
    four parts), or, when one sample does not fit, a slab of rows of each sample at a time
    (:meth:`_run_slabs`).
    """

    __slots__ = ("block", "dtype", "geometry", "packed_shape", "plans", "self_pack", "small",
                 "weight_shape")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
                 dest_shape: tuple[int, ...]) -> None:
        taps = _plan.to_3d(spec.kernel, 1)
        self.dtype = dtype
        self.weight_shape = (spec.c_out, spec.c_in, *taps)
        self.packed_shape = _dense.packed_shape(spec.c_out, spec.c_in, taps, dtype)
        self.block = self.packed_shape[-1]
        self.self_pack = _dense.self_packs(self.packed_shape, dtype)
        self.geometry = (_plan.to_3d(spec.stride, 1), _plan.to_3d(spec.dilation, 1),
                         _plan.to_3d(tuple(p[0] for p in spec.pads), 0))
        # plans of small calls (batch parts of a larger call included), which do not depend
        # on the thread count, by shapes
        self.plans: dict[tuple, _dense.DensePlan] = {}
        # a small call runs whole in one compiled function (layout copies and packing
        # included): its Python-side preparation would cost more than its arithmetic
        self.small = _dense.small_call(src_shape, self.weight_shape, dest_shape, dtype,
                                       *self.geometry)

    def _plan(self, src_shape: tuple[int, ...], dest: np.ndarray,
              pad_low: tuple[int, int, int] | None = None) -> _dense.DensePlan:
        """The dense plan of one call reading an input of ``src_shape`` and writing ``dest``.

        ``pad_low`` is a slab's low padding (:meth:`_run_slabs`), else the convolution's.
        """
        stride, dilation, own_pad_low = self.geometry
        pad_low = own_pad_low if pad_low is None else pad_low
        key = (src_shape, dest.shape, _dense.stages_output(dest), pad_low)
        plan = self.plans.get(key)
        if plan is not None:
            return plan
        small = _dense.is_small(src_shape, self.packed_shape, dest.shape)
        plan = _dense.dense_plan(src_shape, self.packed_shape, dest.shape, self.dtype,
                                 stride, dilation, pad_low, None, None, None,
                                 1 if small else numba.get_num_threads(), key[2],
                                 self.self_pack)
        if small:
            self.plans[key] = plan
        return plan

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray) -> None:
        if self.small is not None:
            _dense.run_small(self.small, src, weight.astype(self.dtype, copy=False).reshape(
                self.weight_shape), bias, dest)
            return
        target = dest if _writable_in_place(dest) else np.empty(dest.shape, dest.dtype)
        self._run(src, weight, bias, target)
        if target is not dest:
            dest[...] = target

    def _run(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
             target: np.ndarray) -> None:
        """Run a call that is not small into ``target``, written in place."""
        packed = self._packed_tiles(src, weight, target)
        if packed is not None:
            _dense.run_tiled(packed, src, self.packed(weight), bias, target)
            return
        prepared = self.prepare(weight)
        # a channels-first input through per-task tiles, and a channels-last one whose
        # windows read padding when that beats gathering the border windows
        in_place = _dense.accepts_input(src) and not (
            _dense.tiles_channels_last(self.packed_shape, self.dtype)
            and self.reads_padding(src.shape, target.shape))
        tiled = None if self.self_pack or in_place else _dense.tiled_plan(
            src.shape, src.strides, self.packed_shape, target.shape, target.strides, self.dtype,
            *self.geometry, numba.get_num_threads())
        if tiled is not None:
            _dense.run_tiled(tiled, src, prepared, bias, target)
        elif _dense.accepts_input(src):
            self.run_prepared(src, prepared, bias, target)
        else:
            held = self.held_bytes(prepared, weight) + self.scratch_bytes(src, target)
            spare = _spare_bytes(src, target, weight.nbytes, held)
            sample_bytes = src.nbytes // max(src.shape[0], 1)
            rows = self._tiled_rows(src, weight, prepared, target, spare)
            # tiles; else zero-padded parts; else a sample that does not fit goes in slabs
            # of rows, or whole when it cannot be split
            if rows is not None:
                _dense.run_tiled_rows(rows, src, prepared, bias, target)
            elif not self._run_padded(src, prepared, bias, target, spare) and (
                    sample_bytes <= spare
                    or not self._run_slabs(src, prepared, bias, target, spare)):
                step = _plan.copy_samples(src.shape[0], sample_bytes, spare)
                for part, data in _channels_last_parts(src, step):
                    self.run_prepared(data, prepared, bias, target[part])

    def _packed_tiles(self, src: np.ndarray, weight: np.ndarray, dest: np.ndarray
                      ) -> _dense.TiledPlan | None:
        """The tiled call with the weights packed whole, for weights the threads pack themselves.

        For large weights (:attr:`self_pack`, up to :data:`PACKED_TILES_BYTES`) and a
        channels-first input: each task copies the input rows of its block of output rows
        into a tile and runs every channel block on it in window mode
        (:func:`fastconv._dense.run_tiled`), as for smaller weights. The tile's input then
        feeds every block, and no thread packs a block. It applies when the packed weights,
        the tiles and the scratch fit the call's spare memory, with smaller tiles and a
        group of tiles at a time staged (:func:`fastconv._dense.tiled_plan`'s ``group``) as
        small as two if need be, and when the tasks' pixels fill their register tiles
        (:data:`PACKED_TILES_FILL`); None (tiled rows, or copies of the input) otherwise.
        """
        packed_bytes = math.prod(self.packed_shape) * self.dtype.itemsize
        if not self.self_pack or packed_bytes > PACKED_TILES_BYTES or _dense.accepts_input(src):
            return None
        room = _spare_bytes(src, dest, weight.nbytes, packed_bytes)

        def plan(group: int | None, tile_bytes: int | None = None) -> _dense.TiledPlan | None:
            return _dense.tiled_plan(src.shape, src.strides, self.packed_shape, dest.shape,
                                     dest.strides, self.dtype, *self.geometry,
                                     numba.get_num_threads(), True, tile_bytes, group=group)

        def over(tiled: _dense.TiledPlan | None) -> float:
            return 0 if tiled is None else _dense.job_scratch_bytes([tiled], self.dtype) - room

        # the default group and tiles; else a smaller group; else smaller tiles too
        tiled = plan(None)
        if over(tiled) > 0:
            tiled = plan(2)
            if over(tiled) > 0:
                tiled = plan(2, _smaller_tiles([tiled], over(tiled), self.dtype))
        fits = tiled is not None and over(tiled) <= 0
        return tiled if fits and _dense.tile_fill(tiled) >= PACKED_TILES_FILL else None

    def _tiled_rows(self, src: np.ndarray, weight: np.ndarray,
                    prepared: np.ndarray | tuple[np.ndarray, np.ndarray], dest: np.ndarray,
                    spare: float) -> _dense.TiledPlan | None:
        """The self-packing tiled call for an input the row-mode kernel cannot read in place.

        For weights the threads pack themselves (:attr:`self_pack`) when the input would
        otherwise be copied to channels-last in parts of the batch (as many as fit
        ``spare`` bytes), each a launch: each task copies the input rows of its block of
        output rows into a small tile and runs one channel block on it
        (:func:`fastconv._dense.run_tiled_rows`), all in one launch, when that costs less
        (:func:`fastconv._plan.tiles_beat_parts`). None (the copies) otherwise, or when the
        tiles and the threads' blocks do not fit the call's spare memory.
        """
        sample_bytes = src.nbytes // max(src.shape[0], 1)
        if not TILED_ROWS or not self.self_pack or sample_bytes > spare:
            return None
        copy = _padded_copy(src, [self.windows(dest.shape)], spare)
        step = _plan.copy_samples(src.shape[0], sample_bytes, spare) if copy is None \
            else copy[1]
        if not _plan.tiles_beat_parts(-(-src.shape[0] // step), self.packed_shape[0],
                                      src.nbytes):
            return None
        plan = _dense.tiled_plan(src.shape, src.strides, self.packed_shape, dest.shape,
                                 dest.strides, self.dtype, *self.geometry,
                                 numba.get_num_threads(), self_pack=True)
        room = _spare_bytes(src, dest, weight.nbytes, self.held_bytes(prepared, weight))
        fits = plan is not None and _dense.job_scratch_bytes([plan], self.dtype) <= room
        return plan if fits else None

    def reads_padding(self, src_shape: tuple[int, ...], dest_shape: tuple[int, ...]) -> bool:
        """Whether a call reading ``src_shape`` and writing ``dest_shape`` reads padding."""
        return any(low or high for low, high in _plan.pad_margins(self.windows(dest_shape),
                                                                    src_shape[1:4]))

    def windows(self, dest_shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """Input positions ``[first, stop)`` a call writing ``dest_shape`` reads, per axis."""
        stride, dilation, pad_low = self.geometry
        return tuple(_plan.read_window(*axis) for axis in zip(
            dest_shape[1:4], self.weight_shape[2:], stride, dilation, pad_low))

    def _run_padded(self, src: np.ndarray, prepared: np.ndarray | tuple[np.ndarray, np.ndarray],
                    bias: np.ndarray | None, dest: np.ndarray, spare: float) -> bool:
        """Run on zero-padded channels-last copies of parts of the batch.

        The kernel then reads every window in place, none through its zero handling
        (:func:`_padded_copy`). False (nothing run) when no padded copy is made.
        """
        windows = self.windows(dest.shape)
        copy = _padded_copy(src, [windows], spare)
        if copy is None:
            return False
        margins, step = copy
        view = _window_view(windows, margins)
        for part, data in _channels_last_parts(src, step, margins):
            self.run_prepared(data[view], prepared, bias, dest[part], (0, 0, 0))
        return True

    def _run_slabs(self, src: np.ndarray, prepared: np.ndarray | tuple[np.ndarray, np.ndarray],
                   bias: np.ndarray | None, dest: np.ndarray, spare: float) -> bool:
        """Run sample by sample, each copied to channels-last a slab of rows at a time.

        For samples larger than the call's spare memory: the slabs split the first spatial
        axis of more than one output row, each slab's copy holding the input rows its output
        rows read (:func:`fastconv._plan.slab_rows`). A slab's low padding is what remains
        of the convolution's before its first row; its high padding is implied by the rows
        it holds, as for the whole input. Along the other axes the copies are zero-padded
        (margins zeroed once, when the work array is allocated), so the kernel reads those
        windows in place: a 3-D layer's 32-wide rows had half their tiles at a border.
        False (nothing run) when no axis can be split.
        """
        axes = [a for a in (1, 2, 3) if dest.shape[a] > 1]
        if not axes:
            return False
        axis = axes[0]
        stride, dilation, pad_low = (g[axis - 1] for g in self.geometry)
        taps = self.weight_shape[axis + 1]
        margins = list(_plan.pad_margins(self.windows(dest.shape), src.shape[1:4]))
        margins[axis - 1] = (0, 0)  # the slab axis keeps its padding in the kernel
        padded = list(_padded_shape(src.shape, tuple(margins)))
        view = _window_view(self.windows(dest.shape), tuple(margins))[1:]
        if math.prod(padded) > _plan.PAD_COPY_GROWTH * src.size:
            # huge paddings of small inputs: left to the kernel's zero handling
            margins, padded, view = [(0, 0)] * 3, list(src.shape), (slice(None),) * 3
        row_bytes = math.prod(padded) * src.itemsize // max(src.shape[0] * src.shape[axis], 1)
        rows = _plan.slab_rows(dest.shape[axis], stride, dilation, taps,
                               int(spare // max(row_bytes, 1)))
        if rows >= dest.shape[axis]:
            return False
        extent = min(src.shape[axis], (rows - 1) * stride + (taps - 1) * dilation + 1)
        padded[0], padded[axis] = 1, extent
        margins = tuple(margins)
        low = tuple(lo for lo, _ in margins)
        lead = (slice(None),) * axis
        with _workspace.borrowed(("channels-last", margins), tuple(padded), src.dtype,
                                 _workspace.zeros) as buffer:
            for first in range(0, dest.shape[axis], rows):
                last = min(first + rows, dest.shape[axis])
                start = max(0, first * stride - pad_low)
                stop = min(src.shape[axis], (last - 1) * stride - pad_low
                           + (taps - 1) * dilation + 1)
                stop = max(stop, start)
                pads = [0 if lo else p for lo, p in zip(low, self.geometry[2])]
                pads[axis - 1] = pad_low - first * stride + start
                window = list(view)
                window[axis - 1] = slice(0, stop - start)
                data = buffer[lead + (slice(0, stop - start),)]
                for n in range(src.shape[0]):
                    part = (slice(n, n + 1), *lead[1:])
                    _copy_channels_last(src[part + (slice(start, stop),)], data, low)
                    self.run_prepared(buffer[(slice(None), *window)], prepared, bias,
                                      dest[part + (slice(first, last),)], tuple(pads))
        return True

    @property
    def takes_prepared(self) -> bool:
        """Whether calls may go through :meth:`prepare` and :meth:`run_prepared` (not small)."""
        return self.small is None

    def prepare(self, weight: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The weights as the kernel takes them: packed, or described for the threads to pack.

        The threads pack large weights in row mode (:func:`fastconv._dense.self_packs`).
        """
        if self.self_pack:
            return _dense.weight_source(weight.reshape(self.weight_shape), self.dtype,
                                        self.block)
        return self.packed(weight)

    def packed(self, weight: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The weights packed (:func:`fastconv._dense.pack_weights`), whatever their size.

        Into ``out`` (C-contiguous, :attr:`packed_shape`'s elements) when given.
        """
        return _dense.pack_weights_as(weight.reshape(self.weight_shape), self.dtype, self.block,
                                      out)

    def held_bytes(self, prepared: np.ndarray | tuple[np.ndarray, np.ndarray],
                   weight: np.ndarray) -> int:
        """Bytes of weights a call holds beyond the caller's.

        Packed weights, or converted ones (threads packing weights of another dtype, or
        read-only ones).
        """
        if not self.self_pack:
            return prepared.nbytes
        source = prepared[0]
        return 0 if np.may_share_memory(source, weight) else source.nbytes

    def scratch_bytes(self, src: np.ndarray, dest: np.ndarray) -> int:
        """Bytes of the kernel's scratch in a call reading ``src`` and writing ``dest``.

        The threads' packed channel blocks among them; ``src`` may be the channels-first
        data whose channels-last copy the kernel reads.
        """
        return _dense.scratch_bytes(self._plan(src.shape, dest))

    def call(self, src: np.ndarray, prepared: np.ndarray | tuple[np.ndarray, np.ndarray],
             dest: np.ndarray, pad_low: tuple[int, int, int] | None = None
             ) -> tuple[_dense.DensePlan, np.ndarray, np.ndarray | tuple[np.ndarray, np.ndarray],
                        np.ndarray]:
        """:meth:`run_prepared`'s call as :func:`fastconv._dense.run_jobs` takes it."""
        return self._plan(src.shape, dest, pad_low), src, prepared, dest

    def run_prepared(self, src: np.ndarray, prepared: np.ndarray | tuple[np.ndarray, np.ndarray],
                     bias: np.ndarray | None, dest: np.ndarray,
                     pad_low: tuple[int, int, int] | None = None) -> None:
        """Run on prepared weights, an input the kernel reads in place and a writable ``dest``.

        ``pad_low`` is a slab's low padding (:meth:`_run_slabs`), else the convolution's.
        """
        _dense.run_dense(self._plan(src.shape, dest, pad_low), src, prepared, bias, dest)


class _WinogradPass:
    """A 3x3 stride-1 convolution on the Winograd F(2x2, 3x3) kernel (a planned pass).

    Calling it transforms the weights (:func:`fastconv._winograd.transform_weights`) and
    runs :func:`fastconv._winograd.run_winograd` on the input and the destination in place,
    channels-first or channels-last: each task copies the input rows it reads into a small
    zero-padded tile. :func:`_forward_pass` plans it only where its workspace fits
    (:func:`winograd_call`); a call whose input has a negative stride, or that another
    thread count leaves without room, runs on the direct kernel (:class:`_DensePass`).
    """

    __slots__ = ("dense", "dtype", "spec", "weight_shape")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
                 dest_shape: tuple[int, ...]) -> None:
        self.spec = spec
        self.dtype = dtype
        self.weight_shape = (spec.c_out, spec.c_in, *spec.kernel)
        self.dense = _DensePass(spec, dtype, src_shape, dest_shape)

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray) -> None:
        weight = weight.reshape(self.weight_shape)
        plan = _winograd_plan(self.spec, self.dtype, src, dest)
        if plan is None:
            self.dense(src, weight, bias, dest)
            return
        target = dest if _writable_in_place(dest) else np.empty(dest.shape, dest.dtype)
        _winograd.run_winograd(plan, src, weight.astype(self.dtype, copy=False), bias, target)
        if target is not dest:
            dest[...] = target


def _winograd_plan(spec: ConvSpec, dtype: np.dtype, src: np.ndarray, dest: np.ndarray
                   ) -> _winograd.WinogradPlan | None:
    """The Winograd plan of a call reading ``src`` and writing ``dest``, or None.

    None for an input with a negative stride, or when the transformed weights and the
    threads' scratch do not fit the call's spare memory (:func:`_spare_bytes`) even with
    one row of tiles per task. A forced Winograd kernel (:data:`FORCE_FORWARD_ALGORITHM`:
    tests, benchmarks) runs whatever its workspace: the transformed weights alone exceed
    the spare memory of small calls.
    """
    if min(src.strides) < 0:
        return None
    weight_bytes = spec.c_out * spec.c_in * math.prod(spec.kernel) * dtype.itemsize
    spare = math.inf if FORCE_FORWARD_ALGORITHM == "winograd" else _spare_bytes(
        src, dest, weight_bytes,
        WINOGRAD_CALL_BYTES + (0 if _writable_in_place(dest) else dest.nbytes))
    return _winograd.winograd_plan(src.shape, src.strides, dest.shape, dest.strides,
                                   tuple(low for low, _ in spec.pads), spec.dilation, dtype,
                                   numba.get_num_threads(), spare)


def _channels_last(view: np.ndarray) -> contextlib.AbstractContextManager[np.ndarray]:
    """``view`` itself if the dense kernels read it in place, else a channels-last copy.

    A large copy is a work array (:mod:`fastconv._workspace`) for the ``with`` block.
    """
    if _dense.accepts_input(view):
        return contextlib.nullcontext(view)
    return _channels_last_copy(view)


def _channels_last_contiguous(view: np.ndarray) -> contextlib.AbstractContextManager[np.ndarray]:
    """``view`` if it is C-contiguous, else a C-contiguous copy (a work array when large)."""
    if view.flags.c_contiguous:
        return contextlib.nullcontext(view)
    return _channels_last_copy(view)


def _channels_last_copy(view: np.ndarray) -> contextlib.AbstractContextManager[np.ndarray]:
    """A C-contiguous copy of a canonical view for a ``with`` block."""
    if view.nbytes < _workspace.MIN_BYTES:
        return contextlib.nullcontext(np.ascontiguousarray(view))
    return _borrowed_copy(view)


@contextlib.contextmanager
def _borrowed_copy(view: np.ndarray) -> Iterator[np.ndarray]:
    """A C-contiguous work-array copy of a canonical view."""
    with _workspace.borrowed("channels-last", view.shape, view.dtype) as copy:
        _copy_channels_last(view, copy)
        yield copy


#: Below this many elements a layout copy is left to NumPy (no parallel launch).
_LAYOUT_KERNEL_MIN = 1 << 16


def _copy_channels_last(view: np.ndarray, dest: np.ndarray,
                        low: tuple[int, int, int] = (0, 0, 0)) -> None:
    """Copy a canonical view into the C-contiguous ``dest``, from index ``low`` on.

    ``dest`` has the view's shape, or larger spatial extents with ``low`` the low margin
    per spatial dimension (a padded copy: the margins are not written). Channels-first data
    whose planes keep their pixels adjacent (a whole array, a part of its batch or a slab
    of its planes) goes through the vectorised transposing kernel
    :func:`fastconv._kernels.channels_last_copy`.
    """
    planes = _adjacent_planes(_channels_first(view))
    if planes is None or view.size < _LAYOUT_KERNEL_MIN:
        interior = (slice(None), *(slice(lo, lo + n) for lo, n in zip(low, view.shape[1:4])))
        np.copyto(dest[interior], view)
        return
    _jit.ensure_compiled(_kernels.channels_last_copy, _kernels.channels_last_signature,
                         view.dtype)
    _kernels.channels_last_copy(planes, dest, _low_margins(low))


@lru_cache(maxsize=64)
def _low_margins(low: tuple[int, int, int]) -> np.ndarray:
    """``low`` as the read-only int64 array :func:`fastconv._kernels.channels_last_copy` takes."""
    margins = np.array(low, np.int64)
    margins.flags.writeable = False
    return margins


def _adjacent_planes(planes: np.ndarray) -> np.ndarray | None:
    """A read-only view of ``(N, C, D0, D1, D2)`` planes with adjacent pixels, else None.

    Examples
    --------
    >>> a = np.zeros((2, 3, 4, 5, 6), np.float32)
    >>> _adjacent_planes(a[:, :, 1:3]).shape, _adjacent_planes(a[:, :, :, 1:3]) is None
    ((2, 3, 2, 5, 6), True)
    """
    step = planes.itemsize
    for extent, stride in zip(reversed(planes.shape[2:]), reversed(planes.strides[2:])):
        if extent > 1 and stride != step:
            return None
        step *= extent
    if min(planes.strides[:2]) < 0:
        return None
    return np.lib.stride_tricks.as_strided(planes, writeable=False)


def _padded_shape(shape: tuple[int, ...], margins: tuple[tuple[int, int], ...]
                  ) -> tuple[int, ...]:
    """The shape of a canonical ``shape`` with ``margins`` (low, high) per spatial dimension.

    Examples
    --------
    >>> _padded_shape((2, 1, 5, 6, 3), ((0, 0), (1, 1), (2, 0)))
    (2, 1, 7, 8, 3)
    """
    return (shape[0], *(n + lo + hi for n, (lo, hi) in zip(shape[1:4], margins)), shape[4])


_NO_MARGINS = ((0, 0),) * 3

#: Source bytes of the part of the batch whose stride phases (not dense ones) run before
#: the next part's: it stays in the last-level cache while every phase reads it.
_PHASE_SOURCE_BYTES = 4 * 1024 * 1024


def _channels_last_parts(src: np.ndarray, step: int,
                         margins: tuple[tuple[int, int], ...] = _NO_MARGINS
                         ) -> Iterator[tuple[slice, np.ndarray]]:
    """``(part, copy)`` for each part of ``step`` samples: a channels-last copy of ``src[part]``.

    With ``margins`` (low, high per spatial dimension) the copy is zero-padded: the kernels
    then read every window in place. The copies share one work array (the last part, if
    smaller, uses the front of it), so a call holds one part's copy at a time.
    """
    batch = src.shape[0]
    shape = _padded_shape((min(step, batch), *src.shape[1:]), margins)
    low = tuple(lo for lo, _ in margins)
    # a padded work array is zeroed once, when allocated: its borrowers write only the
    # interior, so the margins stay zero
    padded = margins != _NO_MARGINS
    with _workspace.borrowed(("channels-last", margins) if padded else "channels-last", shape,
                             src.dtype, _workspace.zeros if padded else None) as buffer:
        for first in range(0, batch, step):
            part = slice(first, first + step)
            data = buffer[:min(step, batch - first)]
            _copy_channels_last(src[part], data, low)
            yield part, data


def _padded_copy(src: np.ndarray, windows: list[tuple[tuple[int, int], ...]], spare: float
                 ) -> tuple[tuple[tuple[int, int], ...], int] | None:
    """Margins and samples per part of zero-padded channels-last copies of ``src``.

    ``windows`` are what each pass reading the copies reads (:meth:`_DensePass.windows`, in
    ``src``'s coordinates). None when they read no padding, when the padded copy would be
    more than :data:`fastconv._plan.PAD_COPY_GROWTH` times ``src`` or when one padded
    sample exceeds ``spare`` bytes.
    """
    margins = _plan.widest_margins([_plan.pad_margins(w, src.shape[1:4]) for w in windows])
    padded = _padded_shape(src.shape, margins)
    sample_bytes = math.prod(padded[1:]) * src.itemsize
    if (not any(lo or hi for lo, hi in margins) or sample_bytes > spare
            or math.prod(padded) > _plan.PAD_COPY_GROWTH * src.size):
        return None
    return margins, _plan.copy_samples(src.shape[0], sample_bytes, spare)


def _window_view(windows: tuple[tuple[int, int], ...], margins: tuple[tuple[int, int], ...]
                 ) -> tuple[slice, ...]:
    """Index of a padded copy (``margins``) holding exactly the input ``windows`` read.

    Examples
    --------
    >>> _window_view(((-1, 57), (0, 7), (0, 1)), ((1, 1), (0, 0), (0, 0)))
    (slice(None, None, None), slice(0, 58, None), slice(0, 7, None), slice(0, 1, None))
    """
    return (slice(None), *(slice(lo + first, lo + stop)
                           for (first, stop), (lo, _) in zip(windows, margins)))


def dense_tiles(spec: ConvSpec, dtype: np.dtype, batch: int
                ) -> tuple[bool, _dense.TiledPlan] | None:
    """The per-task tiles of a channels-first call with weights the threads pack themselves.

    As a forward dense pass of ``spec`` on ``batch`` C-contiguous channels-first samples
    with weights of ``dtype`` would choose them (for :func:`fastconv.explain`): ``(True,
    plan)`` for the weights packed whole (:meth:`_DensePass._packed_tiles`), ``(False,
    plan)`` for tiled rows (:meth:`_DensePass._tiled_rows`), None for neither (smaller
    weights, or copies of the input). No memory is allocated.
    """
    taps = _plan.to_3d(spec.kernel, 1)
    src_shape = (batch, *_plan.to_3d(spec.in_sizes, 1), spec.c_in)
    dest_shape = (batch, *_plan.to_3d(spec.out_sizes, 1), spec.c_out)
    packed_shape = _dense.packed_shape(spec.c_out, spec.c_in, taps, dtype)
    # a small call runs whole in one compiled function (planning it would compile that)
    if not _dense.self_packs(packed_shape, dtype) or _dense.is_small(src_shape, packed_shape,
                                                                     dest_shape):
        return None
    run = _DensePass(spec, dtype, src_shape, dest_shape)
    src, dest = (_channels_first_dummy(shape, dtype) for shape in (src_shape, dest_shape))
    weight = _channels_first_dummy((spec.c_out, spec.c_in, *taps), dtype, False)
    packed = run._packed_tiles(src, weight, dest)
    if packed is not None:
        return True, packed
    prepared = run.prepare(weight)
    spare = _spare_bytes(src, dest, weight.nbytes,
                         run.held_bytes(prepared, weight) + run.scratch_bytes(src, dest))
    rows = run._tiled_rows(src, weight, prepared, dest, spare)
    return None if rows is None else (False, rows)


def winograd_call(spec: ConvSpec, dtype: np.dtype, batch: int, planar_layout: bool
                  ) -> _winograd.WinogradPlan | None:
    """The Winograd plan of a call of ``spec`` on ``batch`` C-contiguous samples, or None.

    As :func:`_winograd_plan` makes it for channels-first (``planar_layout``) or
    channels-last data; None where the direct kernel runs the call instead (the planned
    pass, and :func:`fastconv.explain`). No memory is allocated.
    """
    src_shape = (batch, *_plan.to_3d(spec.in_sizes, 1), spec.c_in)
    dest_shape = (batch, *_plan.to_3d(spec.out_sizes, 1), spec.c_out)
    src, dest = (_channels_first_dummy(shape, dtype, planar_layout)
                 for shape in (src_shape, dest_shape))
    return _winograd_plan(spec, dtype, src, dest)


def _smaller_tiles(plans: list[_dense.TiledPlan], over: float, dtype: np.dtype) -> int:
    """Tile bytes that take ``over`` bytes off the threads' largest tiles of ``plans``.

    Every thread that may run has a tile (``NUMBA_NUM_THREADS`` of them), so each gives up
    its share.
    """
    largest = max(plan.tiles_shape[1] for plan in plans) * dtype.itemsize
    return largest - math.ceil(over / numba.config.NUMBA_NUM_THREADS)


def _channels_first_dummy(shape: tuple[int, ...], dtype: np.dtype,
                          canonical: bool = True) -> np.ndarray:
    """A view of no memory with the shape and strides of a C-contiguous array's.

    ``canonical``: the ``(N, I0, I1, I2, C)`` view of an ``(N, C, I0, I1, I2)`` array,
    else the array itself. Only its shape, strides and dtype may be used.
    """
    order = (0, 4, 1, 2, 3) if canonical else tuple(range(len(shape)))
    stored = tuple(shape[axis] for axis in order)
    steps = np.dtype(dtype).itemsize * np.cumprod((1, *stored[:0:-1]))[::-1]
    strides = [0] * len(shape)
    for axis, step in zip(order, steps):
        strides[axis] = int(step)
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, strides, writeable=False)


def _spare_bytes(src: np.ndarray, dest: np.ndarray, weight_bytes: int,
                 held_bytes: int) -> float:
    """Memory a pass reading ``src`` and writing ``dest`` may use for layout copies.

    :data:`fastconv._plan.EXTRA_MEMORY` of its operands (``weight_bytes`` of weights
    included) and result, less what it holds anyway (``held_bytes``: packed weights, scratch).
    """
    return _plan.EXTRA_MEMORY * (src.nbytes + dest.nbytes + weight_bytes) - held_bytes


def _copy_step(src: np.ndarray, dest: np.ndarray, weight_bytes: int, held_bytes: int) -> int:
    """Samples per part of a pass that copies ``src`` to channels-last part by part.

    :func:`fastconv._plan.copy_samples` within :func:`_spare_bytes`.
    """
    batch = src.shape[0]
    return _plan.copy_samples(batch, src.nbytes // max(batch, 1),
                              _spare_bytes(src, dest, weight_bytes, held_bytes))


def _writable_in_place(dest: np.ndarray) -> bool:
    """Whether a kernel may write ``dest`` through its strides.

    No negative strides: in the arrays fastconv writes (its own results and views of them,
    where only unit dims may have stride 0, and ``out=``, which is C-contiguous) distinct
    elements then never share memory.
    """
    return min(dest.strides) >= 0


def _channels_first(view: np.ndarray) -> np.ndarray:
    """The ``(N, C, D0, D1, D2)`` view of a canonical ``(N, D0, D1, D2, C)`` view."""
    return view.transpose(0, 4, 1, 2, 3)


#: Largest padded input tile of a planar task. Forward (a 64-channel stride phase of a 7x7
#: stem's input gradient): 128 KiB and at least 64 tasks per launch gave one output row per
#: task, each copying four input rows; 512 KiB and 8 tasks per thread: five rows, +20-27%.
#: Weight gradient (2 threads, against 128 KiB): grouped 3x3 stride 2, 8x8-channel groups
#: (256 channels, 56x56 input) 4.0-4.2 -> 3.1-3.7 ms, 4x16 at stride 2 -7%, 4x4 and 2x32
#: at stride 1 -6 to -7%, 8x8 at stride 1 +3%.
PLANAR_TILE_BYTES = 1 << 19


def column_phases(spec: ConvSpec) -> _plan.ColumnPhases:
    """The planar kernels' column phases of ``spec`` (one for a unit last stride)."""
    return _plan.column_phases(spec.kernel[-1], spec.stride[-1], spec.dilation[-1])


def _split_columns(spec: ConvSpec) -> _plan.ColumnPhases | None:
    """:func:`column_phases` of ``spec``, None when its kernel runs as it is (no split)."""
    phases = column_phases(spec)
    same = phases.phases == 1 and phases.slots == tuple((0, t) for t in range(len(phases.slots)))
    return None if same else phases


def planar_kernel_shape(spec: ConvSpec) -> tuple[int, ...]:
    """Shape of the kernel the planar kernels run for ``spec`` (its column phases')."""
    phases = column_phases(spec)
    taps0, taps1, _ = _plan.to_3d(spec.kernel, 1)
    return (spec.c_out, spec.c_in // spec.groups, taps0 * phases.phases, taps1, phases.taps)


def _planar_geometry(spec: ConvSpec) -> np.ndarray:
    """Geometry records the planar kernels run ``spec`` with (read-only).

    The last dimension's taps and dilation are those of its column phases' kernel
    (:func:`fastconv._planar.planar_conv`).
    """
    phases = column_phases(spec)
    geometry = spec.geometry(False)
    geometry[2, _plan.TAPS], geometry[2, _plan.DILATION] = phases.taps, phases.step
    geometry.flags.writeable = False
    return geometry


def planar_rows_per_task(spec: ConvSpec, dtype: np.dtype, planes_shape: tuple[int, ...],
                         tasks_per_block: int, halo: bool = False) -> int:
    """Row block of a planar kernel writing (or reading the gradient of) ``planes_shape``.

    ``halo``: the forward kernel, which copies each task's tile: size the block by the
    input rows its tile holds beyond its own too, within :data:`PLANAR_TILE_BYTES`, with
    at least eight tasks per thread (its results do not depend on the rows per task, so
    the thread count may decide; :func:`fastconv._plan.planar_row_block`). The weight
    gradient's blocks (which order its sums) depend on the shapes only: the same tile
    bound, at least 64 tasks.
    """
    _, _, _, rows1, cols = planes_shape
    _, in_group, planes, taps1, taps2 = planar_kernel_shape(spec)
    stride1 = _plan.to_3d(spec.stride, 1)[1]
    dilation1 = _plan.to_3d(spec.dilation, 1)[1]
    width = _plan.planar_tile_width(cols, taps2, column_phases(spec).step, lanes_for(dtype))
    row_bytes = in_group * planes * width * stride1 * dtype.itemsize
    if not halo:
        return _plan.planar_row_block(tasks_per_block, rows1, cols, row_bytes, 0,
                                      PLANAR_TILE_BYTES)
    extra = -(-(taps1 - 1) * dilation1 // stride1)
    return _plan.planar_row_block(tasks_per_block, rows1, cols, row_bytes, extra,
                                  PLANAR_TILE_BYTES, 8 * numba.config.NUMBA_NUM_THREADS)


def _planes_shape(canonical_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Channels-first shape of a canonical view shape."""
    n, d0, d1, d2, c = canonical_shape
    return (n, c, d0, d1, d2)


@contextlib.contextmanager
def _channels_first_result(dest: np.ndarray, dtype: np.dtype) -> Iterator[np.ndarray]:
    """A C-contiguous channels-first array for a kernel to write ``dest``'s result into.

    ``dest``'s own channels-first view when it is C-contiguous (written in place), else a
    temporary copied into that view when the block ends.
    """
    view = _channels_first(dest)
    target = view if view.flags.c_contiguous else np.empty(view.shape, dtype)
    yield target
    if target is not view:
        view[...] = target


class _PlanarPass:
    """A forward convolution on the planar kernel (channels-first data).

    Calling it reshapes the kernel (to its column phases' with a stride along the last
    dimension, :func:`fastconv._planar.phase_kernel`) and packs its channel blocks, and runs
    :func:`fastconv._planar.planar_conv` on the channels-first views. An adjoint's stride
    phase is written in place: the call gets the whole input gradient and the phase's
    placement in it (``spread``: with a step along the last dimension, which the kernel's
    tasks take through a buffer of their rows after their tile).
    """

    __slots__ = ("dtype", "geometry", "groups", "kernel_shape", "phases", "row_block",
                 "task_at", "tiles_purpose", "tiles_shape", "zero_bias")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, dest_shape: tuple[int, ...],
                 spread: bool = False) -> None:
        planes = _planes_shape(dest_shape)
        self.dtype, self.groups = dtype, spec.groups
        self.kernel_shape = (spec.c_out, spec.c_in // spec.groups, *_plan.to_3d(spec.kernel, 1))
        self.phases = _split_columns(spec)
        self.row_block = planar_rows_per_task(spec, dtype, planes,
                                              planes[0] * spec.groups * planes[2], halo=True)
        self.geometry = _planar_geometry(spec)
        # one padded input tile per thread whose slack is zeros (see planar_conv): kept
        # between calls, shared by calls whose tile rows have the same width and extent
        rows = spec.c_out // spec.groups * self.row_block * planes[4] if spread else 0
        self.tiles_shape = (numba.config.NUMBA_NUM_THREADS, _planar.tile_elements(
            planar_kernel_shape(spec), self.geometry, planes[4], self.row_block, dtype) + rows)
        self.tiles_purpose = ("planar tiles", *_planar.tile_row_layout(
            planar_kernel_shape(spec), self.geometry, planes[4], dtype))
        self.zero_bias = np.zeros(spec.c_out, dtype)
        self.zero_bias.flags.writeable = False
        _jit.ensure_compiled(_planar.planar_conv, _planar.planar_signature, dtype)
        self.task_at = _planar.planar_task_address(dtype)

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray, place: np.ndarray = _planar.WHOLE) -> None:
        """Write the convolution of ``src`` to ``dest`` (at ``place`` in it, in place).

        ``place`` (:func:`fastconv._planar.planar_conv`) needs a channels-first
        C-contiguous ``dest`` (a pass built with ``spread`` for a step along the last
        dimension); with :data:`fastconv._planar.WHOLE`, any ``dest`` (a strided one is
        written through a temporary).
        """
        kernel = np.ascontiguousarray(weight, dtype=self.dtype).reshape(self.kernel_shape)
        if self.phases is not None:
            kernel = np.ascontiguousarray(_planar.phase_kernel(kernel, self.phases))
        planes = np.ascontiguousarray(_channels_first(src))
        bias_vector = self.zero_bias if bias is None else np.ascontiguousarray(bias, self.dtype)
        with _workspace.borrowed(self.tiles_purpose, self.tiles_shape, self.dtype,
                                 _workspace.zeros) as tiles, \
                _channels_first_result(dest, self.dtype) as target:
            _planar.planar_conv(planes, kernel, _planar.pack_channel_blocks(kernel, self.groups),
                                _planar.pack_channel_triples(kernel, self.groups), bias_vector,
                                target, self.geometry, place, self.row_block, tiles,
                                self.task_at)


class _PointwisePass:
    """A pointwise (1x1, unit stride, unpadded) convolution of channels-first data, in place.

    Calling it packs the weights in six-channel blocks and runs
    :func:`fastconv._pointwise.pointwise_conv` on the planes with the spatial dims flattened.
    """

    __slots__ = ("dtype", "groups", "planes", "strips", "task_at", "zero_bias")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, dest_shape: tuple[int, ...]) -> None:
        self.dtype, self.groups = dtype, spec.groups
        self.planes = math.prod(dest_shape[1:4])
        # about 4 strips of pixels per task, fewer when that leaves < 8 tasks per thread
        strips = -(-self.planes // (2 * lanes_for(dtype)))
        tasks = dest_shape[0] * spec.groups
        self.strips = max(1, min(8, tasks * strips // (8 * numba.config.NUMBA_NUM_THREADS)))
        self.zero_bias = np.zeros(spec.c_out, dtype)
        self.zero_bias.flags.writeable = False
        _jit.ensure_compiled(_pointwise.pointwise_conv, _pointwise.pointwise_signature, dtype)
        self.task_at = _pointwise.pointwise_task_address(dtype)

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray) -> None:
        planes = np.ascontiguousarray(_channels_first(src))
        packed = _pointwise.pack_pointwise(weight, self.groups, self.dtype)
        bias_vector = self.zero_bias if bias is None else np.ascontiguousarray(bias, self.dtype)
        with _channels_first_result(dest, self.dtype) as target:
            _pointwise.pointwise_conv(
                planes.reshape(planes.shape[0], planes.shape[1], self.planes), packed,
                bias_vector, target.reshape(target.shape[0], target.shape[1], self.planes),
                self.strips, self.task_at)


class _DepthwisePass:
    """A depthwise convolution vectorised across channels (channels-first data, in place).

    Calling it packs the weights in blocks of a vector's lanes and runs
    :func:`fastconv._depthwise.depthwise_conv` on the channels-first views, or, with
    ``channels_last``, on C-contiguous channels-last canonical views in place (a forward
    convolution, :func:`channels_last_depthwise`). An adjoint
    (``adjoint``: its forward convolution; ``spec`` then describes the stride-1 convolution
    of the spread gradient, :func:`_spread_spec`) reads its source spread with zeros by
    the adjoint's strides, with the flipped kernel.
    """

    __slots__ = ("channels_last", "dtype", "flip", "geometry", "lanes", "row_block", "spread",
                 "task_at", "tasks", "zero_bias")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, dest_shape: tuple[int, ...],
                 adjoint: ConvSpec | None = None, channels_last: bool = False) -> None:
        self.dtype = dtype
        self.lanes = lanes_for(dtype)
        self.channels_last = channels_last
        planes = _planes_shape(dest_shape)
        self.geometry = spec.geometry(False)
        self.geometry.flags.writeable = False
        self.spread = np.array((*_plan.to_3d(adjoint.stride if adjoint else (), 1),
                                int(channels_last)), np.int64)
        self.spread.flags.writeable = False
        self.flip = (slice(None), slice(None)) + (slice(None, None, -1) if adjoint
                                                  else slice(None),) * spec.ndim
        self.row_block = depthwise_rows_per_task(spec, dtype, planes)
        self.tasks = _depthwise.depthwise_tasks(planes, self.lanes, self.row_block)
        self.zero_bias = np.zeros(-(-spec.c_out // self.lanes) * self.lanes, dtype)
        self.zero_bias.flags.writeable = False
        _jit.ensure_compiled(_depthwise.depthwise_conv, _depthwise.depthwise_signature, dtype)
        self.task_at = _depthwise.depthwise_task_address(dtype)

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray) -> None:
        kernel = np.asarray(weight, dtype=self.dtype)[self.flip]
        packed = _depthwise.pack_lanes(kernel.reshape(kernel.shape[0], 1,
                                                      *_plan.to_3d(kernel.shape[2:], 1)))
        bias_vector = self.zero_bias if bias is None else _depthwise.pack_bias(
            np.asarray(bias, self.dtype), self.lanes)
        per = _plan.depthwise_tasks_per_chunk(self.tasks, numba.get_num_threads())
        if self.channels_last:  # the canonical views themselves, C-contiguous
            target = dest if dest.flags.c_contiguous else np.empty(dest.shape, self.dtype)
            _depthwise.depthwise_conv(np.ascontiguousarray(src), packed, bias_vector, target,
                                      self.geometry, self.spread, self.row_block, per,
                                      self.task_at)
            if target is not dest:
                dest[...] = target
            return
        planes = np.ascontiguousarray(_channels_first(src))
        with _channels_first_result(dest, self.dtype) as target:
            _depthwise.depthwise_conv(planes, packed, bias_vector, target, self.geometry,
                                      self.spread, self.row_block, per, self.task_at)


def _spread_spec(spec: ConvSpec) -> ConvSpec:
    """The adjoint of ``spec`` as a stride-1 convolution of the spread output gradient.

    See :func:`fastconv._plan.spread_adjoint` (depthwise layers: the channel axes need no
    swap).
    """
    spread = [_plan.spread_adjoint(n, q, k, s, d, p) for n, q, k, s, d, p in
              zip(spec.in_sizes, spec.out_sizes, spec.kernel, spec.stride, spec.dilation,
                  spec.pads)]
    return ConvSpec(spec.ndim, spec.c_out, spec.c_in, spec.groups,
                    tuple(size for size, _ in spread), spec.kernel, (1,) * spec.ndim,
                    spec.dilation, tuple(pads for _, pads in spread), spec.in_sizes, "zeros")


def depthwise_rows_per_task(spec: ConvSpec, dtype: np.dtype, planes_shape: tuple[int, ...],
                            threads: int = -1) -> int:
    """Output rows per task of the depthwise kernels writing (or reading) ``planes_shape``.

    :func:`fastconv._plan.depthwise_row_block` of the layer's tile rows, for ``threads``
    (default: Numba's); 0 sizes the block by the tile alone (shapes only).
    """
    _, channels, rows0, rows1, cols = planes_shape
    taps0, taps1, taps2 = _plan.to_3d(spec.kernel, 1)
    stride0, stride1, stride2 = _plan.to_3d(spec.stride, 1)
    dilation0, dilation1, dilation2 = _plan.to_3d(spec.dilation, 1)
    lanes = lanes_for(dtype)
    row_bytes = taps0 * _depthwise.tile_width(cols, taps2, stride2, dilation2) * lanes * \
        dtype.itemsize
    tasks = planes_shape[0] * -(-channels // lanes) * rows0
    return _plan.depthwise_row_block(rows1, stride1, (taps1 - 1) * dilation1, row_bytes,
                                     tasks, numba.config.NUMBA_NUM_THREADS if threads < 0
                                     else threads)


def forward_choice(spec: ConvSpec, dtype: np.dtype, planar_layout: bool,
                   forced: str | None = None, small: ConvSpec | None = None,
                   winograd_allowed: bool = True) -> str:
    """Algorithm of the forward convolution ``spec`` (small calls included).

    :func:`fastconv._plan.forward_algorithm`, then :func:`_small_choice` for the work of
    ``small`` (default: ``spec``; an adjoint's stride phase is small only when the whole
    adjoint is). Shared by the passes and by :func:`fastconv.explain`, which reports what
    they run. Without ``winograd_allowed``: the kernel that runs a call the Winograd kernel
    has no room for.
    """
    winograd = _plan.winograd_applicable(spec.padding_mode, spec.groups, spec.c_in,
                                         spec.c_out, spec.kernel, spec.stride, spec.dilation)
    if forced == "winograd":
        return "winograd" if winograd else "gather"
    algorithm = _plan.forward_algorithm(spec.padding_mode, spec.groups, spec.c_in, spec.c_out,
                                        spec.kernel, spec.stride, _dense.block_size(dtype),
                                        planar_layout, forced, _padded(spec),
                                        spec.out_sizes[-1],
                                        all(p >= 0 for pair in spec.pads for p in pair),
                                        lanes_for(dtype))
    # layers of the dense or planar kernel that the Winograd kernel runs faster
    if forced is None and algorithm in ("dense", "planar") and winograd and \
            winograd_allowed and _winograd.PREFERRED and \
            _plan.winograd_preferred(spec.c_in, spec.c_out, lanes_for(dtype), dtype.itemsize,
                                     spec.ndim == 3):
        algorithm = "winograd"
    return _small_choice(spec if small is None else small, algorithm, forced)


def channels_last_depthwise(spec: ConvSpec, dtype: np.dtype, forced: str | None = None
                            ) -> bool:
    """Whether a forward depthwise convolution runs on C-contiguous channels-last data in place.

    The depthwise kernel holds a vector of channels per pixel: on channels-last data its
    tile rows are plain vector copies and its results plain vector stores, with no
    transposes (:func:`fastconv._depthwise.depthwise_conv`). It takes the layers it takes
    on channels-first data (zero padding, one channel per group, at least a vector of
    channels: fewer leave lanes idle) but small calls, which keep their own route.
    """
    return (_plan.depthwise_applicable(spec.padding_mode, spec.groups, spec.c_in, spec.c_out,
                                       True, all(p >= 0 for pair in spec.pads for p in pair))
            and spec.c_in >= lanes_for(dtype) and forced in (None, "depthwise")
            and forward_choice(spec, dtype, True, forced) != "gather")


def channels_last_depthwise_adjoint(spec: ConvSpec, dtype: np.dtype,
                                    forced: str | None = None) -> bool:
    """Whether the input gradient of ``spec`` runs on C-contiguous channels-last data in place.

    A stride-1 depthwise layer's input gradient is the forward convolution of the output
    gradient with the flipped kernel (:func:`_spread_spec` with no spread), which the
    depthwise kernel runs on channels-last data in place (:func:`channels_last_depthwise`)
    unless the call is small (its own route).
    """
    return (all(s == 1 for s in spec.stride)
            and adjoint_choice(spec, dtype, True, forced) != "gather"
            and channels_last_depthwise(_spread_spec(spec), dtype, forced))


def adjoint_choice(spec: ConvSpec, dtype: np.dtype, planar_layout: bool,
                   forced: str | None = None, winograd_allowed: bool = True) -> str:
    """Algorithm of the adjoint of ``spec`` (the kernel of its stride phases, or gather).

    A stride-1 adjoint whose one phase runs on the Winograd kernel (:func:`forward_choice`)
    reports ``"winograd"`` (unless not ``winograd_allowed``).
    """
    # a stride-1 adjoint's one phase pads by (kernel span - 1) - the forward's pads
    phase_pads = all(max(pair) <= (k - 1) * d
                     for pair, k, d in zip(spec.pads, spec.kernel, spec.dilation))
    algorithm = _plan.adjoint_algorithm(spec.padding_mode, spec.groups, spec.c_in, spec.c_out,
                                        spec.kernel, spec.stride, _dense.block_size(dtype),
                                        planar_layout, forced, _padded(spec),
                                        -(-spec.in_sizes[-1] // spec.stride[-1]), phase_pads,
                                        lanes_for(dtype))
    if (algorithm in ("dense", "planar") or forced == "winograd") and winograd_allowed and \
            all(s == 1 for s in spec.stride):
        phase = single_phase(spec)
        if phase is not None and forward_choice(phase, dtype, planar_layout, forced,
                                                small=spec) == "winograd":
            return "winograd"
    return _small_choice(spec, algorithm, forced)


def single_phase(spec: ConvSpec) -> ConvSpec | None:
    """The forward convolution computing a stride-1 adjoint, or None if no tap reaches it."""
    phases = tuple(per_dim[0] for per_dim in adjoint_phases_per_dim(spec))
    if any(not p.count or not p.taps for p in phases):
        return None
    return _phase_spec(spec, phases)


def _small_choice(spec: ConvSpec, algorithm: str, forced: str | None) -> str:
    """:func:`fastconv._plan.small_call_algorithm` for ``spec``'s work per sample.

    Per sample: the algorithm, and so every bit of a sample's result, never depends on N.
    """
    work = math.prod(spec.out_sizes) * spec.c_out * (spec.c_in // spec.groups) * \
        math.prod(spec.kernel)
    dense = _plan.dense_applicable(spec.padding_mode, spec.groups, spec.c_in, spec.c_out)
    return _plan.small_call_algorithm(algorithm, work, forced, dense_applies=dense)


def _forward_pass(spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
                  dest_shape: tuple[int, ...], planar_layout: bool,
                  algorithm: str | None = None, spread: bool = False) -> Pass:
    """Plan the convolution ``dest = conv(src, weight) + bias`` on canonical views.

    ``planar_layout``: both views are channels-first (C-contiguous in ``(N, C, ...)`` order,
    or single-channel), which the planar kernel needs. ``algorithm``: the kernel, when the
    caller has chosen it (default: :func:`forward_choice`). ``spread``: a planar pass will
    write an adjoint's stride phase with a step along the last dimension in place
    (:class:`_PlanarPass`).
    """
    if algorithm is None:
        algorithm = forward_choice(spec, dtype, planar_layout, FORCE_FORWARD_ALGORITHM)
    if math.prod(dest_shape):
        algorithm = runnable_choice(spec, dtype, src_shape[0], planar_layout, algorithm)
    if algorithm == "dense" and math.prod(dest_shape):
        return _DensePass(spec, dtype, src_shape, dest_shape)
    if algorithm == "winograd" and math.prod(dest_shape):
        return _WinogradPass(spec, dtype, src_shape, dest_shape)
    if algorithm == "planar" and math.prod(dest_shape):
        return _PlanarPass(spec, dtype, dest_shape, spread)
    if algorithm == "pointwise" and math.prod(dest_shape):
        return _PointwisePass(spec, dtype, dest_shape)
    if algorithm == "depthwise" and math.prod(dest_shape):
        return _DepthwisePass(spec, dtype, dest_shape)
    return _GatherPass(spec, False, dtype, dest_shape)


def runnable_choice(spec: ConvSpec, dtype: np.dtype, batch: int, planar_layout: bool,
                    algorithm: str) -> str:
    """``algorithm`` for a forward call of ``batch`` samples, unless Winograd has no room.

    A Winograd call whose workspace does not fit (:func:`winograd_call`) runs on the kernel
    :func:`forward_choice` chooses without Winograd, the dense or planar one (a forced
    Winograd kernel: the dense one).
    """
    if algorithm != "winograd" or winograd_call(spec, dtype, batch, planar_layout) is not None:
        return algorithm
    if FORCE_FORWARD_ALGORITHM == "winograd":
        return "dense"
    return forward_choice(spec, dtype, planar_layout, None, winograd_allowed=False)


def _padded(spec: ConvSpec) -> bool:
    """Whether a convolution pads its input anywhere."""
    return any(low or high for low, high in spec.pads)


def _phase_kernel(weight: np.ndarray, spec: ConvSpec, taps: tuple[slice, ...],
                  shape: tuple[int, ...]) -> np.ndarray:
    """Kernel of the forward convolution computing one stride phase of the adjoint.

    It keeps the phase's taps along each dimension (``taps``, from :func:`_phase_taps`), in
    the phase's order (which reverses them), with the channel axes swapped within each
    group; ``shape`` is the result's shape.
    """
    g = spec.groups
    kernel = weight.reshape(g, spec.c_out // g, spec.c_in // g, *spec.kernel)
    # the taps of a phase are evenly spaced: a strided view, not a copy (the passes copy the
    # kernel once, into their own packed layout)
    return kernel[taps].swapaxes(1, 2).reshape(shape)


def _phase_taps(spec: ConvSpec, phases: tuple[_plan.Phase, ...]
                ) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """The index of a phase's taps in the grouped kernel and the phase kernel's shape."""
    index = (slice(None),) * 3 + tuple(_taps_slice(p.taps) for p in phases)
    shape = (spec.c_in, spec.c_out // spec.groups, *(len(p.taps) for p in phases))
    return index, shape


def _taps_slice(taps: tuple[int, ...]) -> slice:
    """The slice selecting ``taps`` (evenly spaced, in either order) along a kernel axis.

    Examples
    --------
    >>> _taps_slice((4, 2, 0)), _taps_slice((3,)), _taps_slice((1, 3))
    (slice(4, None, -2), slice(3, 4, 1), slice(1, 4, 2))
    """
    step = taps[1] - taps[0] if len(taps) > 1 else 1
    if any(b - a != step for a, b in zip(taps, taps[1:])) or step == 0:
        raise ValueError(f"phase taps {taps} are not evenly spaced")
    stop = taps[-1] + (1 if step > 0 else -1)
    return slice(taps[0], None if stop < 0 else stop, step)


def adjoint_phases_per_dim(spec: ConvSpec) -> list[list[_plan.Phase]]:
    """The stride phases of the input gradient of ``spec``, per spatial dimension."""
    return [_plan.adjoint_phases(n, q, k, s, d, p[0]) for n, q, k, s, d, p in
            zip(spec.in_sizes, spec.out_sizes, spec.kernel, spec.stride, spec.dilation,
                spec.pads)]


def _phase_spec(spec: ConvSpec, phases: tuple[_plan.Phase, ...]) -> ConvSpec:
    """The forward convolution (stride 1, zero padding) computing one stride phase."""
    in_sizes = tuple(q - p.offset for q, p in zip(spec.out_sizes, phases))
    taps = tuple(len(p.taps) for p in phases)
    dilation = tuple(p.dilation for p in phases)
    counts = tuple(p.count for p in phases)
    pads = tuple((p.pad_low, (c - 1) + (k - 1) * d - p.pad_low - (n - 1))
                 for p, c, k, d, n in zip(phases, counts, taps, dilation, in_sizes))
    return ConvSpec(spec.ndim, spec.c_out, spec.c_in, spec.groups, in_sizes, taps,
                    (1,) * spec.ndim, dilation, pads, counts, "zeros")


class _FusedColumns(NamedTuple):
    """The column phases of an adjoint's row phase as one planar convolution.

    Column phase ``p`` (input-gradient columns ``s * m + p``, ``s`` the last stride) is a
    stride-1 convolution of the gradient with some taps at gradient offsets ``first_p +
    u * dilation_p``. All of them together are one convolution with ``s`` output
    channels per input-gradient channel (phase innermost) over the offsets ``low, low +
    step, ...``: zero weights where a phase has no tap. The planar kernel interleaves
    those channels into whole rows of the input gradient (:func:`fastconv._planar.
    planar_conv`), which every column phase written on its own had filled an element in
    ``s`` at a time.
    """

    #: ``(taps index, kernel shape, columns)`` of each column phase: its kernel (as
    #: :func:`_phase_kernel` cuts it) and the fused kernel's column of each of its taps.
    parts: tuple[tuple[tuple[slice, ...], tuple[int, ...], tuple[int, ...]], ...]
    #: Shape of the fused kernel.
    shape: tuple[int, ...]

    def kernel(self, weight: np.ndarray, spec: ConvSpec) -> np.ndarray:
        """The fused kernel of ``spec``'s ``weight``."""
        fused = np.zeros(self.shape, weight.dtype)
        phases = len(self.parts)
        for p, (index, shape, columns) in enumerate(self.parts):
            if columns:
                fused[p::phases, ..., list(columns)] = _phase_kernel(weight, spec, index, shape)
        return fused


def _fused_columns(spec: ConvSpec, lead: tuple[_plan.Phase, ...],
                   columns: tuple[_plan.Phase, ...]) -> tuple[ConvSpec, _FusedColumns] | None:
    """The convolution computing every column phase of the row phase ``lead`` at once.

    ``columns`` are the last dimension's phases (:func:`fastconv._plan.adjoint_phases`);
    None when none of them has a tap (the row phase is the bias alone).
    """
    offsets = [[p.offset - p.pad_low + u * p.dilation for u in range(len(p.taps))]
               if p.count else [] for p in columns]
    flat = [a for phase in offsets for a in phase]
    if not flat:
        return None
    low = min(flat)
    step = math.gcd(*(a - low for a in flat)) or 1
    taps = (max(flat) - low) // step + 1
    count = columns[0].count
    size = spec.out_sizes[-1]
    in_sizes = (*(q - p.offset for q, p in zip(spec.out_sizes, lead)), size)
    kernel = (*(len(p.taps) for p in lead), taps)
    dilation = (*(p.dilation for p in lead), step)
    counts = (*(p.count for p in lead), count)
    pads = tuple((p.pad_low, (c - 1) + (k - 1) * d - p.pad_low - (n - 1))
                 for p, c, k, d, n in zip(lead, counts, kernel, dilation, in_sizes))
    pads += ((-low, (count - 1) + (taps - 1) * step + low - (size - 1)),)
    phases = len(columns)
    fused = ConvSpec(spec.ndim, spec.c_out, spec.c_in * phases, spec.groups, in_sizes, kernel,
                     (1,) * spec.ndim, dilation, pads, counts, "zeros")
    parts = tuple((*_phase_taps(spec, (*lead, p)), tuple((a - low) // step for a in phase))
                  if phase else ((), (), ()) for p, phase in zip(columns, offsets))
    return fused, _FusedColumns(parts, (spec.c_in * phases, spec.c_out // spec.groups,
                                        *kernel))


#: Whether self-packing dense passes may run tiled rows (:meth:`_DensePass._tiled_rows`).
TILED_ROWS = True

#: Largest packed weights :meth:`_DensePass._packed_tiles` runs in window mode (every tile
#: reads them all); 0 turns that route off.
PACKED_TILES_BYTES = 4 << 20

#: Least :func:`fastconv._dense.tile_fill` of :meth:`_DensePass._packed_tiles`' plans. The
#: stride-2 3x3 128->256 forward (14 output columns), against the copies of the input
#: (interleaved A/B): blocks of 4 rows (98% of the slots filled) +14% in float32; blocks of 2
#: or 3 rows (87.5%: each task's last tile half empty) 0.95-0.99x in float32, 0.96x in float64.
PACKED_TILES_FILL = 15 / 16

#: Largest packed weights of one stride phase that :meth:`_PhasePass._tiled_phases` runs in
#: window mode (the phase's whole weights are read for every tile).
_TILED_PHASE_BYTES = 1 << 20

#: Job tables a :class:`_PhasePass` keeps (one per layout of its operands and thread count;
#: all are dropped when one more is needed).
_TABLES_KEPT = 8


def _channels_first_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised canonical ``(N, D0, D1, D2, C)`` array, channels-first in memory."""
    n, d0, d1, d2, c = shape
    return np.empty((n, c, d0, d1, d2), dtype).transpose(0, 2, 3, 4, 1)


@contextlib.contextmanager
def _planes(shape: tuple[int, ...], dtype: np.dtype, purpose: str) -> Iterator[np.ndarray]:
    """A canonical ``(N, D0, D1, D2, C)`` work array, channels-first C-contiguous in memory.

    Borrowed (:mod:`fastconv._workspace`): a fresh multi-megabyte array costs a page fault
    per 4 KiB on its first write, as much as the copy itself here.
    """
    n, d0, d1, d2, c = shape
    with _workspace.borrowed(purpose, (n, c, d0, d1, d2), dtype) as planes:
        yield planes.transpose(0, 2, 3, 4, 1)


@contextlib.contextmanager
def _planes_copy(view: np.ndarray) -> Iterator[np.ndarray]:
    """A copy of the canonical ``view`` as channels-first planes (:func:`_planes`).

    Channels-last data (a C-contiguous ``view``) go through the transposing kernel
    :func:`fastconv._kernels.channels_last_copy`, which reads them as ``pixels`` "channels"
    of ``C`` adjacent "pixels" each: the transpose of ``(N, pixels, C)`` is ``(N, C,
    pixels)``. Other layouts are copied by NumPy.
    """
    n, d0, d1, d2, c = view.shape
    with _planes(view.shape, view.dtype, "planes-in") as planes:
        if view.flags.c_contiguous and view.size >= _LAYOUT_KERNEL_MIN:
            _jit.ensure_compiled(_kernels.channels_last_copy,
                                 _kernels.channels_last_signature, view.dtype)
            _kernels.channels_last_copy(
                view.reshape(n, d0 * d1 * d2, 1, 1, c),
                _channels_first(planes).reshape(n, 1, 1, c, d0 * d1 * d2),
                _low_margins((0, 0, 0)))
        else:
            np.copyto(planes, view)
        yield planes


def _copy_planes(planes: np.ndarray, dest: np.ndarray) -> None:
    """Copy the canonical view of channels-first C-contiguous ``planes`` into ``dest``."""
    if dest.flags.c_contiguous:
        _copy_channels_last(planes, dest)
    else:
        np.copyto(dest, planes)


def _on_planes(algorithm: Callable[[bool], str]) -> bool:
    """Whether a call not on channels-first planes runs on copies of its data as planes.

    ``algorithm(planar_layout)`` names the call's algorithm on data in planes (True) or in
    the call's own layout (False): the copies are made when only they spare the call the
    gather kernel, the one kernel that reads every layout (a depthwise or grouped layer, or
    a padding mode, on channels-last data: 3x3 depthwise over 256 channels at 56x56 took
    87 ms channels-last against 0.74 ms channels-first).
    """
    return algorithm(False) == "gather" and algorithm(True) != "gather"


class _PassOnPlanes:
    """A forward or adjoint pass planned on channels-first planes, for data in another layout.

    A part of the batch at a time (as few parts as fit the call's spare memory,
    :func:`_copy_step`), the input is copied to planes (:func:`_planes_copy`), the pass
    writes planes, and those are copied into the destination. A sample's results do not
    depend on the batch it is computed in, so the parts give the whole batch's bits.
    """

    __slots__ = ("run",)

    def __init__(self, run: Pass) -> None:
        self.run = run

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray) -> None:
        batch = src.shape[0]
        # the parts' copies of the input and of the result, per sample of the input
        step = _plan.copy_samples(batch, (src.nbytes + dest.nbytes) // max(batch, 1),
                                  _spare_bytes(src, dest, weight.nbytes, 0))
        for first in range(0, batch, step):
            part = slice(first, first + step)
            with _planes_copy(src[part]) as planes_in, _planes(
                    dest[part].shape, dest.dtype, "planes-out") as planes_out:
                self.run(planes_in, weight, bias, planes_out)
                _copy_planes(planes_out, dest[part])


class _WeightPassOnPlanes:
    """A weight (and bias) gradient pass planned on channels-first planes.

    For data in another layout: both operands are copied to planes (:func:`_planes_copy`),
    whole (the gradients sum over the batch, in chunks fixed by the shapes).
    """

    __slots__ = ("run",)

    def __init__(self, run: Callable) -> None:
        self.run = run

    def __call__(self, src: np.ndarray | None, grad_out: np.ndarray
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
        with _planes_copy(grad_out) as grad_planes:
            if src is None:
                return self.run(None, grad_planes)
            with _planes_copy(src) as planes:
                return self.run(planes, grad_planes)


class _PhasePass:
    """A zero-padded adjoint as one stride-1 forward convolution per stride phase.

    Input position ``start + stride * m`` of each phase receives a forward convolution of
    the output gradient with a subset of the taps, reversed (:func:`fastconv._plan.
    adjoint_phases`): no zero insertion and no multiply-add wasted on inserted zeros. Each
    phase's forward convolution is planned like any other (dense, pointwise or planar
    kernel); a phase that no tap reaches is filled with the bias (or zeros).

    Every phase reads the whole source. Dense phases share one channels-last copy per part
    of the batch (:meth:`_dense_phases`); the others run all their phases on a part of the
    batch whose source fits :data:`_PHASE_SOURCE_BYTES`, then the next part, so the source
    is read from memory once, not once per phase (a 7x7 stride-2 stem's input gradient:
    four phases, each streaming 26 MB of output gradient, were half of the call).
    """

    __slots__ = ("part", "phases", "places", "single", "spec", "tables")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
                 dest_shape: tuple[int, ...], planar_layout: bool) -> None:
        self.spec = spec
        lead = (slice(None),) * (4 - spec.ndim)  # batch and the unit leading dims
        per_dim = adjoint_phases_per_dim(spec)
        reached = [phases for phases in itertools.product(*per_dim)
                   if all(p.count for p in phases)]
        problems = [None if any(not p.taps for p in phases) else _phase_spec(spec, phases)
                    for phases in reached]
        # a phase runs serial code only when the whole adjoint is small (a depthwise 3x3
        # stride-2 layer's 1x1 phase on 7x7 planes had run on the gather kernel: 0.1x
        # PyTorch for the input gradient)
        choices = [None if problem is None else runnable_choice(
                   problem, dtype, src_shape[0], planar_layout,
                   forward_choice(problem, dtype, planar_layout, FORCE_FORWARD_ALGORITHM,
                                  small=spec))
                   for problem in problems]
        if any(s > 1 for s in spec.stride):
            # strided depthwise adjoints that do not run on the spread gradient (see
            # fastconv._plan.depthwise_spread_preferred) keep the planar kernel's phases,
            # written in place (the depthwise kernel would write each through a temporary)
            choices = ["planar" if choice == "depthwise" else choice for choice in choices]
        if "dense" in choices:  # a 1x1 phase too: then one layout copy serves every phase
            choices = ["dense" if choice == "pointwise" else choice for choice in choices]
        # samples per part of the batch (all of them for dense phases, see the docstring)
        sample_bytes = math.prod(src_shape[1:]) * dtype.itemsize
        several = sum(choice is not None for choice in choices) > 1
        self.part = src_shape[0] if "dense" in choices or not several else max(
            1, min(src_shape[0], _PHASE_SOURCE_BYTES // max(sample_bytes, 1)))
        src_shape = (self.part, *src_shape[1:])
        dest_shape = (self.part, *dest_shape[1:])
        self.phases = []
        # where each planar phase lies in the input gradient, which it writes in place
        self.places: list[np.ndarray | None] = []
        # planar (or pointwise: 1x1 phases, which the planar kernel runs too) column phases
        if spec.stride[-1] > 1 and "planar" in choices and \
                set(choices) <= {"planar", "pointwise", None}:
            self._fuse_columns(spec, dtype, per_dim, src_shape, dest_shape, planar_layout)
            self.single = None
            self.tables = {}
            return
        for phases, problem, choice in zip(reached, problems, choices):
            target = lead + tuple(slice(p.start, None, s) for p, s in zip(phases, spec.stride))
            place = np.array([_plan.to_3d(tuple(p.start for p in phases), 0),
                              _plan.to_3d(spec.stride, 1)], np.int64)
            place.flags.writeable = False
            self.places.append(place if choice == "planar" else None)
            if problem is None:
                self.phases.append((phases, target, None, None, None))
                continue
            source = lead + tuple(slice(p.offset, None) for p in phases)
            sizes = (src_shape[0], *_plan.to_3d(problem.in_sizes, 1), src_shape[4])
            out = (dest_shape[0], *_plan.to_3d(problem.out_sizes, 1), dest_shape[4])
            run = _forward_pass(problem, dtype, sizes, out, planar_layout, choice,
                                spec.stride[-1] > 1)
            self.phases.append((phases, target, source, run, _phase_taps(spec, phases)))
        # a stride-1 adjoint: one phase reading all of the source and writing all of the
        # destination, run without the per-phase views (a tiny call's Python time)
        whole = all(p.start == 0 and p.offset == 0 for p in self.phases[0][0]) if len(
            self.phases) == 1 else False
        self.single = self.phases[0][3:] if whole and self.phases[0][3] is not None else None
        # what :meth:`_tiled_phases` planned for a layout of the operands (or None: not tiled)
        self.tables: dict[tuple, tuple | None] = {}

    def _fuse_columns(self, spec: ConvSpec, dtype: np.dtype,
                      per_dim: list[tuple[_plan.Phase, ...]], src_shape: tuple[int, ...],
                      dest_shape: tuple[int, ...], planar_layout: bool) -> None:
        """Plan one planar pass per row phase, all its column phases at once.

        Planar phases with a stride along the last dimension (:class:`_FusedColumns`).
        """
        lead = (slice(None),) * (4 - spec.ndim)
        for rows in itertools.product(*per_dim[:-1]):
            if not all(p.count for p in rows):
                continue
            target = lead + tuple(slice(p.start, None, s) for p, s in zip(rows, spec.stride))
            fused = _fused_columns(spec, rows, per_dim[-1]) if all(p.taps for p in rows) \
                else None
            if fused is None:  # no tap reaches the row phase: the bias alone
                self.phases.append((rows, target + (slice(None),), None, None, None))
                self.places.append(None)
                continue
            problem, columns = fused
            source = lead + tuple(slice(p.offset, None) for p in rows) + (slice(None),)
            sizes = (src_shape[0], *_plan.to_3d(problem.in_sizes, 1), src_shape[4])
            out = (dest_shape[0], *_plan.to_3d(problem.out_sizes, 1), problem.c_out)
            run = _forward_pass(problem, dtype, sizes, out, planar_layout, "planar", True)
            place = np.array([_plan.to_3d((*(p.start for p in rows), 0), 0),
                              _plan.to_3d(spec.stride, 1)], np.int64)
            place.flags.writeable = False
            self.phases.append((rows, target + (slice(None),), source, run, columns))
            self.places.append(place)

    def __call__(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 dest: np.ndarray) -> None:
        if self.single is not None:
            run, taps = self.single
            run(src, _phase_kernel(weight, self.spec, *taps), bias, dest)
            return
        runs = [run for _, _, _, run, _ in self.phases if run is not None]
        # one phase (a stride-1 adjoint) is a plain forward pass, which lays out its own input
        if (len(runs) > 1 and all(isinstance(run, _DensePass) and run.takes_prepared
                                  for run in runs)
                and not _dense.accepts_input(src) and _writable_in_place(dest)):
            if not self._tiled_phases(src, weight, bias, dest):
                self._dense_phases(src, weight, bias, dest)
            return
        # each phase's pass lays out (a part of the batch at a time) what it reads; every
        # phase of a part of the batch runs before the next part (see the docstring)
        kernels = [None if run is None else taps.kernel(weight, self.spec)
                   if isinstance(taps, _FusedColumns) else _phase_kernel(weight, self.spec, *taps)
                   for _, _, _, run, taps in self.phases]
        fused = any(isinstance(taps, _FusedColumns) for *_, taps in self.phases)
        # fused column phases compute a channel per column phase (their bias repeated)
        phase_bias = None if bias is None or not fused else np.repeat(
            np.asarray(bias), self.spec.stride[-1])
        batch = src.shape[0]
        # planar phases write in place where the gradient is channels-first contiguous
        in_place = _channels_first(dest).flags.c_contiguous
        for first in range(0, batch, self.part):
            part_src, part_dest = (src, dest) if self.part >= batch else (
                src[first:first + self.part], dest[first:first + self.part])
            out = part_dest
            if fused and not in_place:  # the kernel writes channels-first contiguous data
                out = _channels_first_empty(part_dest.shape, part_dest.dtype)
            for (_, target, source, run, taps), kernel, place in zip(
                    self.phases, kernels, self.places):
                if run is None:
                    out[target] = 0 if bias is None else bias
                elif isinstance(taps, _FusedColumns):
                    run(part_src[source], kernel, phase_bias, out, place)
                elif place is not None and in_place:
                    run(part_src[source], kernel, bias, part_dest, place)
                else:
                    run(part_src[source], kernel, bias, part_dest[target])
            if out is not part_dest:
                part_dest[...] = out

    def _tiled_phases(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                      dest: np.ndarray) -> bool:
        """Run dense phases on a channels-first ``src`` in tiled mode, in one launch.

        Each phase's tasks copy the input rows they read into a small tile
        (:func:`fastconv._dense.run_tiled`): no layout copy of ``src``, the whole batch in
        one part, and one launch for every phase (:func:`fastconv._dense.run_jobs`). The
        phases' weights are packed (window mode) into one buffer, held at once: False
        (nothing run) when they do not fit the call's spare memory or a phase cannot be
        tiled. The job table is planned once per layout of the operands and thread count
        (:meth:`_tiled_table`); later calls move its addresses to their arrays.
        """
        key = (src.strides, dest.strides, weight.dtype, numba.get_num_threads())
        planned = self.tables.get(key, False)  # one lookup: other threads may clear the dict
        if planned is False:
            planned = self._tiled_table(src, weight, dest)
            if len(self.tables) >= _TABLES_KEPT:
                self.tables.clear()
            self.tables[key] = planned
        if planned is None:
            return False
        table, offsets, (src_at, dest_at, packed_at) = planned
        runs = [(run, taps) for _, _, _, run, taps in self.phases if run is not None]
        packed = np.empty(offsets[-1], runs[0][0].dtype)
        for (run, taps), lo, hi in zip(runs, offsets, offsets[1:]):
            run.packed(_phase_kernel(weight, self.spec, *taps), packed[lo:hi])
        for _, target, _, run, _ in self.phases:
            if run is None:
                dest[target] = 0 if bias is None else bias
        _dense.run_jobs(table, bias, src.ctypes.data - src_at, dest.ctypes.data - dest_at,
                        packed.ctypes.data - packed_at)
        return True

    def _tiled_table(self, src: np.ndarray, weight: np.ndarray, dest: np.ndarray
                     ) -> tuple[_dense.JobTable, list[int], tuple[int, int, int]] | None:
        """The job table of :meth:`_tiled_phases` for operands laid out as these.

        With the phases' offsets in the packed-weights buffer and the addresses of
        ``src``, ``dest`` and the buffer the table was built with; None when the phases do
        not run tiled.
        """
        runs = [(run, src[source], dest[target])
                for _, target, source, run, _ in self.phases if run is not None]
        dtype = runs[0][0].dtype
        sizes = [math.prod(run.packed_shape) for run, *_ in runs]
        spare = _spare_bytes(src, dest, weight.nbytes, sum(sizes) * dtype.itemsize)
        if max(sizes) * dtype.itemsize > _TILED_PHASE_BYTES or spare <= 0:
            return None

        def plan(tile_bytes: int | None) -> list[_dense.TiledPlan | None]:
            return [_dense.tiled_plan(x.shape, x.strides, run.packed_shape, out.shape,
                                      out.strides, dtype, *run.geometry,
                                      numba.get_num_threads(), True, tile_bytes)
                    for run, x, out in runs]

        plans = plan(None)
        if None in plans:
            return None
        # the threads' tiles take what the rest of the scratch leaves
        over = _dense.job_scratch_bytes(plans, dtype) - spare
        if over > 0:
            plans = plan(_smaller_tiles(plans, over, dtype) - 1024)
            if None in plans or _dense.job_scratch_bytes(plans, dtype) > spare:
                return None
        offsets = [0, *itertools.accumulate(sizes)]
        packed = np.empty(offsets[-1], dtype)  # its address only: the table's weights
        calls = [(plan, x, packed[lo:hi].reshape(run.packed_shape), out)
                 for plan, (run, x, out), lo, hi in zip(plans, runs, offsets, offsets[1:])]
        return (_dense.job_table(calls), offsets,
                (src.ctypes.data, dest.ctypes.data, packed.ctypes.data))

    def _dense_phases(self, src: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                      dest: np.ndarray) -> None:
        """Run phases that all take the dense kernel on a channels-first ``src``.

        Each part of the batch is copied to channels-last once for all the phases (not once
        per phase), and all the phases of a part run in one launch (a job table); the
        weights are prepared once per phase.
        """
        kernels = [None if run is None else _phase_kernel(weight, self.spec, *taps)
                   for _, _, _, run, taps in self.phases]
        prepared = [None if run is None else run.prepare(kernel)
                    for (_, _, _, run, _), kernel in zip(self.phases, kernels)]
        runs = [(run, p, k, source, target) for (_, target, source, run, _), p, k
                in zip(self.phases, prepared, kernels) if run is not None]
        # every phase's weights are held at once; a launch's scratch is its largest phase's
        held = (sum(run.held_bytes(p, k) for run, p, k, _, _ in runs)
                + max(run.scratch_bytes(src[source], dest[target])
                      for run, _, _, source, target in runs))
        # one zero-padded copy holds what every phase reads, when it is not much larger
        windows = [None if run is None else _shifted(run.windows(dest[target].shape), source)
                   for _, target, source, run, _ in self.phases]
        copy = _padded_copy(src, [w for w in windows if w is not None],
                            _spare_bytes(src, dest, weight.nbytes, held))
        margins, step = ((_NO_MARGINS, _copy_step(src, dest, weight.nbytes, held))
                         if copy is None else copy)
        # one launch for all the phases of a part; parts of the same shape share one table
        table = key = None
        for part, data in _channels_last_parts(src, step, margins):
            out = dest[part]
            calls = []
            for (_, target, source, run, _), weights, window in zip(self.phases, prepared,
                                                                    windows):
                if run is None:
                    out[target] = 0 if bias is None else bias
                elif key != (data.shape, out.shape):
                    view = data[source] if copy is None else data[_window_view(window, margins)]
                    calls.append(run.call(view, weights, out[target],
                                          None if copy is None else (0, 0, 0)))
            if calls:
                table, key, bases = _dense.job_table(calls), (data.shape, out.shape), (
                    data.ctypes.data, out.ctypes.data)
            _dense.run_jobs(table, bias, data.ctypes.data - bases[0],
                            out.ctypes.data - bases[1])


def _shifted(windows: tuple[tuple[int, int], ...], source: tuple[slice, ...]
             ) -> tuple[tuple[int, int], ...]:
    """A phase's read ``windows`` in the coordinates of the input ``source`` slices.

    Examples
    --------
    >>> _shifted(((-1, 28), (0, 28), (0, 1)), (slice(None), slice(1, None), slice(None),
    ...                                         slice(None)))
    ((0, 29), (0, 28), (0, 1))
    """
    return tuple((first + (s.start or 0), stop + (s.start or 0))
                 for (first, stop), s in zip(windows, source[1:4]))


def _adjoint_pass(spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
                  dest_shape: tuple[int, ...], planar_layout: bool) -> Pass:
    """Plan the adjoint of the convolution ``spec`` (input gradient, transposed convolution)."""
    algorithm = adjoint_choice(spec, dtype, planar_layout, FORCE_FORWARD_ALGORITHM)
    if algorithm == "gather" or not math.prod(dest_shape):
        return _GatherPass(spec, True, dtype, dest_shape)
    if algorithm == "spread":
        return _DepthwisePass(_spread_spec(spec), dtype, dest_shape, adjoint=spec)
    return _PhasePass(spec, dtype, src_shape, dest_shape, planar_layout)


class _WeightPass:
    """Weight and/or bias gradient from canonical views of the input and output gradient."""

    __slots__ = ("bias_kernel", "chunks", "dtype", "geometry", "groups", "in_block",
                 "partial_b_shape", "partial_w_shape", "run_bias", "run_weight", "task_at",
                 "want_bias", "want_weight", "weight_kernel", "weight_shape")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, grad_shape: tuple[int, ...],
                 want_weight: bool, want_bias: bool) -> None:
        g = spec.groups
        in_group, out_group = spec.c_in // g, spec.c_out // g
        taps = _plan.to_3d(spec.kernel, 1)
        self.dtype, self.groups = dtype, g
        self.want_weight, self.want_bias = want_weight, want_bias
        self.in_block = max(1, min(in_group, 64, 16384 // max(1, out_group * dtype.itemsize)))
        tiles = g * math.prod(taps) * max(1, -(-in_group // self.in_block))
        rows = grad_shape[0] * grad_shape[1] * grad_shape[2]
        work = math.prod(grad_shape) * math.prod(taps) * in_group
        small = work <= _kernels.SERIAL_MAX_WORK
        self.chunks = _plan.reduction_chunks(rows, tiles, work)
        self.partial_b_shape = (self.chunks, spec.c_out)
        self.partial_w_shape = (self.chunks, g, *taps, in_group, out_group)
        self.weight_shape = (spec.c_out, in_group, *spec.kernel)
        self.geometry = _geometry(spec, False)[0]
        self.run_weight = want_weight and (math.prod(self.partial_w_shape) > 0 or want_bias)
        self.run_bias = not want_weight and want_bias and spec.c_out * self.chunks > 0
        self.weight_kernel = _kernels.weight_grad_serial if small else _kernels.weight_grad
        self.bias_kernel = (_kernels.bias_grad_serial if math.prod(grad_shape)
                            <= _kernels.SERIAL_MAX_WORK else _kernels.bias_grad)
        self.task_at = 0
        if self.run_weight:
            _jit.ensure_compiled(self.weight_kernel, _kernels.weight_grad_signature, dtype)
            self.task_at = _kernels.weight_grad_task_address(dtype)
        if self.run_bias:
            _jit.ensure_compiled(self.bias_kernel, _kernels.bias_grad_signature, dtype)

    def __call__(self, src: np.ndarray | None, grad_out: np.ndarray
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
        # unit stride along channels lets the kernel's innermost loop vectorise
        with _channels_last_contiguous(grad_out) as grad:
            return self._run(src, grad)

    def _run(self, src: np.ndarray | None, grad_out: np.ndarray
             ) -> tuple[np.ndarray | None, np.ndarray | None]:
        dtype = self.dtype
        partial_b = np.zeros(self.partial_b_shape, dtype)
        grad_weight = grad_bias = None
        if self.want_weight:
            partial_w = np.zeros(self.partial_w_shape, dtype)
            if self.run_weight:
                self.weight_kernel(src, grad_out, self.geometry, self.in_block,
                                   self.want_bias, partial_w, partial_b, self.task_at)
            # np.add.reduce is what ndarray.sum runs (same summation order), minus its wrapper
            summed = partial_w[0] if self.chunks == 1 else np.add.reduce(partial_w, axis=0)
            grad_weight = np.ascontiguousarray(summed.transpose(0, 5, 4, 1, 2, 3)).reshape(
                self.weight_shape)
        elif self.run_bias:
            self.bias_kernel(grad_out, self.groups, partial_b)
        if self.want_bias:
            grad_bias = (partial_b[0].copy() if self.chunks == 1
                         else np.add.reduce(partial_b, axis=0))
        return grad_weight, grad_bias


class _BiasPass:
    """Bias gradient alone: the per-channel sums of an output gradient.

    Channels-first contiguous data is summed plane by plane, in place
    (:func:`fastconv._planar.plane_sums`); other layouts by :func:`fastconv._kernels.bias_grad`
    on a channels-last view (copied when its channels are not adjacent). Called like the
    weight passes, ``(src, grad_out) -> (None, grad_bias)``; ``src`` is not read.
    """

    __slots__ = ("chunks", "dtype", "kernel", "planar")

    def __init__(self, dtype: np.dtype, grad_shape: tuple[int, ...], planar: bool) -> None:
        positions = grad_shape[0] * grad_shape[1] * grad_shape[2] * grad_shape[3]
        channels = grad_shape[4]
        serial = positions * channels <= _kernels.SERIAL_MAX_WORK
        self.dtype, self.planar = dtype, planar
        if planar:
            self.chunks = _plan.plane_sum_chunks(positions, channels)
            self.kernel = _planar.plane_sums_serial if serial else _planar.plane_sums
            _jit.ensure_compiled(self.kernel, _planar.plane_sums_signature, dtype)
        else:
            rows = grad_shape[0] * grad_shape[1] * grad_shape[2]
            self.chunks = _plan.reduction_chunks(rows, 1, positions * channels)
            self.kernel = _kernels.bias_grad_serial if serial else _kernels.bias_grad
            _jit.ensure_compiled(self.kernel, _kernels.bias_grad_signature, dtype)

    def __call__(self, src: np.ndarray | None, grad_out: np.ndarray
                 ) -> tuple[None, np.ndarray]:
        channels = grad_out.shape[4]
        partial = np.empty((self.chunks, channels), self.dtype)
        if self.planar:
            planes = _channels_first(grad_out)
            positions = grad_out.shape[1] * grad_out.shape[2] * grad_out.shape[3]
            self.kernel(planes.reshape(planes.shape[0], channels, positions), partial)
        else:
            with _channels_last_contiguous(grad_out) as grad:
                self.kernel(grad, 1, partial)
        return None, partial[0].copy() if self.chunks == 1 else np.add.reduce(partial, axis=0)


class _PlanarWeightPass:
    """Weight (and bias) gradient on the planar kernel (channels-first data).

    With a stride along the last dimension the kernel computes the gradient of the column
    phases' kernel, whose real taps are then picked (:func:`fastconv._planar.real_taps`).
    """

    __slots__ = ("chunks", "dtype", "geometry", "kernel", "out_block", "phases", "row_block",
                 "task_at", "want_bias", "weight_shape", "partial_w_shape")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, grad_shape: tuple[int, ...],
                 want_bias: bool, serial: bool = False) -> None:
        taps = planar_kernel_shape(spec)[2:]
        self.phases = _split_columns(spec)
        planes = _planes_shape(grad_shape)
        batch, _, rows0, rows1, _ = planes
        g, in_group = spec.groups, spec.c_in // spec.groups
        self.dtype, self.want_bias = dtype, want_bias
        # tasks are (chunk, group, output block): rows per tile only bound the tile size
        self.row_block = planar_rows_per_task(spec, dtype, planes, 64)
        plane_taps = taps[1] * taps[2]
        slots = in_group * taps[0] * (plane_taps + plane_taps % 2)
        self.out_block = _plan.planar_out_block(spec.c_out // g,
                                                slots * lanes_for(dtype) * dtype.itemsize)
        units = batch * rows0 * -(-rows1 // self.row_block)
        self.chunks = _plan.reduction_chunks(units, g * -(-(spec.c_out // g) // self.out_block))
        self.partial_w_shape = (self.chunks, spec.c_out, in_group, *taps)
        self.weight_shape = (spec.c_out, in_group, *spec.kernel)
        self.geometry = _planar_geometry(spec)
        # a small call runs on the calling thread (the same tasks, so the same sums)
        self.kernel = (_planar.planar_weight_grad_serial if serial
                       else _planar.planar_weight_grad)
        _jit.ensure_compiled(self.kernel, _planar.planar_weight_grad_signature, dtype)
        self.task_at = _planar.planar_weight_task_address(dtype)

    def __call__(self, src: np.ndarray, grad_out: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        planes = np.ascontiguousarray(_channels_first(src))
        grad_planes = np.ascontiguousarray(_channels_first(grad_out))
        partial_w = np.empty(self.partial_w_shape, self.dtype)
        partial_b = np.empty(self.partial_w_shape[:2], self.dtype)
        self.kernel(planes, grad_planes, self.geometry, self.row_block, self.out_block,
                    self.want_bias, partial_w, partial_b, self.task_at)
        grad_weight = partial_w[0] if self.chunks == 1 else np.add.reduce(partial_w, axis=0)
        if self.phases is not None:
            grad_weight = _planar.real_taps(grad_weight, self.phases)
        grad_bias = None
        if self.want_bias:
            grad_bias = partial_b[0] if self.chunks == 1 else np.add.reduce(partial_b, axis=0)
        return grad_weight.reshape(self.weight_shape), grad_bias



class _DepthwiseWeightPass:
    """Weight (and bias) gradient of a depthwise layer, a vector lane per channel.

    :func:`fastconv._depthwise.depthwise_weight_grad` on the channels-first views (or, with
    ``channels_last``, on C-contiguous channels-last ones in place), its per-chunk partial
    sums (a shape-only number of chunks) added in order.
    """

    __slots__ = ("channels_last", "chunks", "dtype", "geometry", "lanes", "partial_w_shape",
                 "row_block", "task_at", "want_bias", "weight_shape")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, grad_shape: tuple[int, ...],
                 want_bias: bool, channels_last: bool = False) -> None:
        planes = _planes_shape(grad_shape)
        batch, channels, rows0, rows1, _ = planes
        self.dtype, self.want_bias, self.lanes = dtype, want_bias, lanes_for(dtype)
        self.channels_last = channels_last
        # units of rows (which order the sums): from the shapes only, never the threads
        self.row_block = depthwise_rows_per_task(spec, dtype, planes, threads=0)
        blocks = -(-channels // self.lanes)
        self.chunks = _plan.reduction_chunks(batch * rows0 * -(-rows1 // self.row_block),
                                             blocks)
        self.partial_w_shape = (self.chunks, blocks, *_plan.to_3d(spec.kernel, 1),
                                self.lanes)
        self.weight_shape = (spec.c_out, 1, *spec.kernel)
        self.geometry = spec.geometry(False)
        self.geometry.flags.writeable = False
        _jit.ensure_compiled(_depthwise.depthwise_weight_grad,
                             _depthwise.depthwise_weight_grad_signature, dtype)
        self.task_at = _depthwise.depthwise_weight_task_address(dtype)

    def __call__(self, src: np.ndarray, grad_out: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.channels_last:  # the canonical views themselves, C-contiguous
            planes, grad_planes = np.ascontiguousarray(src), np.ascontiguousarray(grad_out)
        else:
            planes = np.ascontiguousarray(_channels_first(src))
            grad_planes = np.ascontiguousarray(_channels_first(grad_out))
        partial_w = np.empty(self.partial_w_shape, self.dtype)
        partial_b = np.empty(self.partial_w_shape[:2] + (self.lanes,), self.dtype)
        _depthwise.depthwise_weight_grad(planes, grad_planes, self.geometry, self.row_block,
                                         int(self.channels_last), partial_w, partial_b,
                                         self.task_at)
        summed = partial_w[0] if self.chunks == 1 else np.add.reduce(partial_w, axis=0)
        channels = self.weight_shape[0]
        # (blocks, T0, T1, T2, lanes) -> (C, T0 * T1 * T2), channel c = block * lanes + lane
        grad_weight = np.moveaxis(summed, -1, 1).reshape(-1, summed[0, ..., 0].size)[:channels]
        grad_bias = None
        if self.want_bias:
            bias = partial_b[0] if self.chunks == 1 else np.add.reduce(partial_b, axis=0)
            grad_bias = bias.reshape(-1)[:channels].copy()
        return np.ascontiguousarray(grad_weight).reshape(self.weight_shape), grad_bias


class _DenseWeightPass:
    """Weight (and bias) gradient on the dense register tiles.

    The kernel reads the input and the output gradient in place, in any layout: each task
    copies the input windows and output-gradient channels of 64 pixels at a time into its
    own small buffers (zero padding included), so the call makes no copy of either operand
    and holds no more memory than the per-chunk partial sums of the weights.
    """

    __slots__ = ("dtype", "out_blocks", "partial_shape", "spec", "steps", "task_at", "tiles",
                 "want_bias")

    def __init__(self, spec: ConvSpec, dtype: np.dtype, grad_shape: tuple[int, ...],
                 want_bias: bool) -> None:
        self.spec, self.dtype = spec, dtype
        taps = _plan.to_3d(spec.kernel, 1)
        self.steps = np.array([_plan.to_3d(spec.stride, 1), _plan.to_3d(spec.dilation, 1),
                               _plan.to_3d(tuple(p[0] for p in spec.pads), 0)],
                              np.int64).T.copy()
        self.steps.flags.writeable = False
        self.out_blocks, self.tiles = _dense_weight.task_split(
            spec.c_in, spec.c_out, taps, lanes_for(dtype), dtype.itemsize)
        self.partial_shape = (spec.c_out, spec.c_in, *taps)
        self.want_bias = want_bias
        _jit.ensure_compiled(_dense_weight.dense_weight_grad,
                             _dense_weight.dense_weight_grad_signature, dtype)
        self.task_at = _dense_weight.weight_task_address(dtype)

    def __call__(self, src: np.ndarray, grad_out: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        spec = self.spec
        chunks = dense_weight_chunks(spec, self.dtype, self.tiles, src.size, grad_out.shape)
        partial = np.empty((chunks, *self.partial_shape), self.dtype)
        partial_bias = np.empty((chunks, spec.c_out if self.want_bias else 0), self.dtype)
        with _non_negative(src) as data, _non_negative(grad_out) as grad:
            _dense_weight.dense_weight_grad(
                _dense.flat_view(data), _element_layout(data), _dense.flat_view(grad),
                _element_layout(grad), self.steps, partial, partial_bias, self.out_blocks,
                self.task_at)
        weight = partial[0] if chunks == 1 else np.add.reduce(partial, axis=0)
        weight = weight.reshape(spec.c_out, spec.c_in, *spec.kernel)
        if not self.want_bias:
            return weight, None
        return weight, partial_bias[0] if chunks == 1 else np.add.reduce(partial_bias, axis=0)


def dense_weight_chunks(spec: ConvSpec, dtype: np.dtype, tiles: int, src_size: int,
                        grad_shape: tuple[int, ...]) -> int:
    """Reduction chunks of the dense weight gradient of ``spec`` (shared with ``explain``).

    :func:`fastconv._plan.dense_weight_chunks` for an input of ``src_size`` elements, an
    output gradient of canonical shape ``grad_shape`` and ``tiles`` tasks per chunk.
    """
    grad_bytes = math.prod(grad_shape) * dtype.itemsize
    weight_bytes = spec.c_out * spec.c_in * math.prod(spec.kernel) * dtype.itemsize
    # every thread's running task holds its work arrays (the configured thread count, not
    # the current one: the chunks, and so the sums, must not depend on it)
    held = numba.config.NUMBA_NUM_THREADS * _dense_weight.task_scratch_bytes(
        spec.c_in, spec.c_out, _plan.to_3d(spec.kernel, 1), grad_shape[3],
        (_plan.to_3d(spec.stride, 1)[1], _plan.to_3d(spec.dilation, 1)[1]),
        _plan.to_3d(spec.stride, 1)[2], _plan.to_3d(spec.dilation, 1)[2], dtype)
    return _plan.dense_weight_chunks(math.prod(grad_shape[:3]), tiles, grad_bytes,
                                     src_size * dtype.itemsize + grad_bytes, weight_bytes, held)


def _non_negative(view: np.ndarray) -> contextlib.AbstractContextManager[np.ndarray]:
    """``view`` if its strides are non-negative, else a C-contiguous copy."""
    if min(view.strides) >= 0:
        return contextlib.nullcontext(view)
    return _channels_last_copy(view)


def _element_layout(view: np.ndarray) -> np.ndarray:
    """Shape (row 0) and element strides (row 1) of a canonical view, as an int64 table."""
    return np.array([view.shape, [s // view.itemsize for s in view.strides]], np.int64)


def weight_choice(spec: ConvSpec, dtype: np.dtype, planar_layout: bool,
                  forced: str | None = None) -> str:
    """Algorithm of the weight gradient of ``spec`` (small calls included).

    :func:`fastconv._plan.weight_algorithm`, then
    :func:`fastconv._plan.small_call_algorithm` for the work per sample. Shared by the
    passes and by :func:`fastconv.explain`.
    """
    algorithm = _plan.weight_algorithm(spec.padding_mode, spec.groups, spec.c_in, spec.c_out,
                                       _plan.to_3d(spec.out_sizes, 1)[2],
                                       _dense.block_size(dtype), planar_layout, forced,
                                       spec.kernel, spec.stride,
                                       all(p >= 0 for pair in spec.pads for p in pair),
                                       lanes_for(dtype))
    work = math.prod(spec.out_sizes) * spec.c_out * (spec.c_in // spec.groups) * \
        math.prod(spec.kernel)
    return _plan.small_call_algorithm(algorithm, work, forced, serial_dense=False,
                                      serial_planar=True, planar_applies=planar_layout)


def channels_last_depthwise_weight(spec: ConvSpec, dtype: np.dtype,
                                   forced: str | None = None) -> bool:
    """Whether the weight gradient of ``spec`` runs on C-contiguous channels-last data in place.

    The depthwise weight-gradient kernel reads a vector of channels per pixel, of the
    input and of the output gradient alike, in the channels-first route's order (the same
    sums), where it runs on channels-first data too (small planes): elsewhere, copies to
    planes for the planar kernel ran faster (3x3 over 256 channels at 56x56: 3.6 ms against
    3.9-4.8 ms in place).
    """
    return (channels_last_depthwise(spec, dtype) and forced in (None, "depthwise")
            and weight_choice(spec, dtype, True, forced) == "depthwise")


def _weight_pass(spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
                 grad_shape: tuple[int, ...], want_weight: bool, want_bias: bool,
                 planar_layout: bool) -> Callable:
    """Plan a weight and/or bias gradient (dense, planar or gather, as the plan layer says)."""
    if want_weight and math.prod(src_shape) and math.prod(grad_shape):
        algorithm = weight_choice(spec, dtype, planar_layout, FORCE_WEIGHT_ALGORITHM)
        work = math.prod(grad_shape[1:]) * (spec.c_in // spec.groups) * math.prod(spec.kernel)
        if algorithm == "planar":
            return _PlanarWeightPass(spec, dtype, grad_shape, want_bias,
                                     work <= _kernels.SERIAL_MAX_WORK)
        if algorithm == "dense":
            return _DenseWeightPass(spec, dtype, grad_shape, want_bias)
        if algorithm == "depthwise":
            return _DepthwiseWeightPass(spec, dtype, grad_shape, want_bias)
    if not want_weight and want_bias and planar_layout and FORCE_WEIGHT_ALGORITHM != "gather":
        return _BiasPass(dtype, grad_shape, True)
    return _WeightPass(spec, dtype, grad_shape, want_weight, want_bias)


# ---------------------------------------------------------------------------- call plans
# A call's plan depends only on the shapes and dtypes of its arrays and on its other
# arguments, so it is made once per distinct call and kept in ``_PLANS``, keyed on those
# values with their exact types (see :func:`_key`). A call whose key is found skips
# validation: the same key passed it before. A call with no key (array-likes that are not
# ndarrays, values of other types) or an unseen key runs the full validation.

_PLAN_LIMIT = 512
_PLANS: dict[tuple, Any] = {}
_PLANS_LOCK = threading.Lock()
_KEY_SCALARS = frozenset({bool, np.bool_, *(np.dtype(code).type
                                            for code in np.typecodes["AllInteger"])})


class _Uncacheable(Exception):
    """An argument has no exact hashable key: the call is validated and planned afresh."""


def _key(value: object) -> object:
    """A hashable key equal for two values only if validation cannot tell them apart.

    ``int`` and ``str`` values (and None) are their own key; tuples, lists, bools and NumPy
    integers are tagged with their exact type, so ``True``, ``1`` and ``np.int64(1)`` (or
    ``(1, 1)`` and ``[1, 1]``) have different keys. Any other type raises
    :class:`_Uncacheable`.

    Examples
    --------
    >>> _key(3), _key("same"), _key((1, True))
    (3, 'same', (<class 'tuple'>, 1, (<class 'bool'>, True)))
    >>> _key(1.0)
    Traceback (most recent call last):
    ...
    fastconv.convolution._Uncacheable
    """
    kind = type(value)
    if kind is int or kind is str or value is None:
        return value
    if kind is tuple or kind is list:
        if all(type(v) is int for v in value):  # a shape: its ints are their own keys
            return (kind, *value)
        return (kind, *[_key(v) for v in value])
    if kind in _KEY_SCALARS:
        return (kind, value)
    raise _Uncacheable


def _array_key(value: object) -> tuple:
    """Key of an array argument: shape, dtype and C-contiguity; only exact ndarrays have one.

    Contiguity takes part because it decides whether the planar kernels apply.
    """
    if type(value) is not np.ndarray:
        raise _Uncacheable
    return value.shape, value.dtype, value.flags.c_contiguous


def _planar_ready(data: DataShape, channels: tuple[int, ...], contiguous: bool) -> bool:
    """Whether arrays of layout ``data`` are channels-first C-contiguous (planar kernels' layout).

    Channels-last arrays qualify when every array involved has a single channel.
    """
    return contiguous and (not data.channels_last or all(c == 1 for c in channels))


def _cached_plan(make_key: Callable[[], tuple]) -> tuple[tuple | None, Any]:
    """``(key, plan)`` of a call: its key from ``make_key()`` and the plan kept for it.

    ``(None, None)`` when an argument has no exact key (:class:`_Uncacheable`), and
    ``(key, None)`` for a call not planned yet.
    """
    try:
        key = make_key()
    except _Uncacheable:
        return None, None
    return key, _PLANS.get(key)


def _remember(key: tuple | None, plan: Any) -> None:
    """Keep ``plan`` for calls with ``key`` (the oldest plan goes when there are too many)."""
    if key is None:
        return
    with _PLANS_LOCK:
        while len(_PLANS) >= _PLAN_LIMIT:
            del _PLANS[next(iter(_PLANS))]
        _PLANS[key] = plan


def clear_plans() -> None:
    """Forget every call plan and free the kept work arrays.

    Plans are rebuilt, and arguments revalidated, on the next calls; work arrays (layout and
    padding copies, see :mod:`fastconv._workspace`) are allocated again.
    """
    with _PLANS_LOCK:
        _PLANS.clear()
    _workspace.clear()


#: Multiply-adds from which a call's parallel loops are scheduled dynamically
#: (:func:`fastconv._runtime.dynamic_schedule`): its few microseconds are then noise.
DYNAMIC_SCHEDULE_FMAS = 1 << 22


def _dynamic(spec: ConvSpec, data: DataShape) -> bool:
    """Whether a call of ``spec`` on ``data`` schedules its parallel loops dynamically.

    Calls of at least :data:`DYNAMIC_SCHEDULE_FMAS` multiply-adds (per pass) run under
    :func:`fastconv._runtime.dynamic_schedule`; smaller ones keep Numba's default (they run
    on one thread anyway) and skip entering a context manager (0.2 us of a 5 us call).
    """
    fmas = (math.prod(data.full_shape(spec.c_out, spec.out_sizes))
            * (spec.c_in // spec.groups) * math.prod(spec.kernel))
    return fmas >= DYNAMIC_SCHEDULE_FMAS


class _ApplyPlan:
    """Plan of a forward or transposed convolution call: result shape, views and pass."""

    __slots__ = ("dtype", "dynamic", "layout", "run", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, layout: tuple, run: Pass,
                 dynamic: bool) -> None:
        self.shape, self.dtype, self.layout, self.run = shape, dtype, layout, run
        self.dynamic = dynamic

    def __call__(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 out: object) -> np.ndarray:
        """Run the planned call on validated arrays; ``out`` is checked here."""
        dtype = self.dtype
        if out is None:  # the common case first: tiny calls count every step
            result = target = np.empty(self.shape, dtype)
        else:
            target = _args.check_out(out, self.shape, dtype)
            inputs = (x, weight) if bias is None else (x, weight, bias)
            result = _destination(self.shape, dtype, target, *inputs)
        src = _view(_in_dtype(x, dtype), self.layout)
        if self.dynamic:
            with _runtime.dynamic_schedule():
                self.run(src, weight, bias, _view(result, self.layout))
        else:
            self.run(src, weight, bias, _view(result, self.layout))
        return result if target is result else _finish(result, target)


# ---------------------------------------------------------------------------- generic API
def _operands(ndim: int, x: ArrayLike, weight: ArrayLike, channels_last: bool
              ) -> tuple[np.ndarray, np.ndarray, DataShape]:
    """Arrays and data shape of a call taking ``x`` and ``weight``."""
    layout = _args.flag("channels_last", channels_last)
    x_arr = _args.as_array("x", x)
    w_arr = _args.as_array("weight", weight)
    return x_arr, w_arr, _args.data_shape("x", x_arr.shape, ndim, layout)


def _apply(x_arr: np.ndarray, w_arr: np.ndarray, bias: ArrayLike | None, data: DataShape,
           spec: ConvSpec, adjoint: bool, size_argument: tuple[str, object], out: object
           ) -> tuple[_ApplyPlan, np.ndarray | None]:
    """Validate the rest of a forward or transposed call and plan it; also returns the bias.

    ``size_argument`` names the argument blamed when the result would not fit in memory.
    ``out`` is checked here too, before planning compiles anything (the plan does not
    depend on it: running the plan checks it again).
    """
    channels = spec.c_in if adjoint else spec.c_out
    b_arr = _args.check_bias(bias, channels)
    named = {"x": x_arr, "weight": w_arr} | ({} if b_arr is None else {"bias": b_arr})
    dtype = _args.result_dtype(**named)
    sizes = spec.in_sizes if adjoint else spec.out_sizes
    shape = data.full_shape(channels, sizes)
    _args.check_size(*size_argument, shape, dtype.itemsize)
    _args.check_out(out, shape, dtype)
    src_shape = _canonical_shape(spec.ndim, data, data.channels, data.spatial)
    dest_shape = _canonical_shape(spec.ndim, data, channels, sizes)
    contiguous = x_arr.flags.c_contiguous
    planar = _planar_ready(data, (data.channels, channels), contiguous)
    run = _planned(adjoint, spec, dtype, src_shape, dest_shape, planar,
                   data.channels_last and contiguous)
    return _ApplyPlan(shape, dtype, _layout(spec.ndim, data), run, _dynamic(spec, data)), b_arr


def _forward(ndim: int, x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None,
             stride: IntOrTuple, padding: Padding, dilation: IntOrTuple, groups: int,
             padding_mode: str, channels_last: bool, out: np.ndarray | None) -> np.ndarray:
    key, plan = _cached_plan(lambda: (
        "conv", ndim, _array_key(x), _array_key(weight),
        None if bias is None else _array_key(bias), _key(stride), _key(padding),
        _key(dilation), _key(groups), _key(padding_mode), _key(channels_last),
        FORCE_FORWARD_ALGORITHM))
    if plan is None:
        x, weight, data = _operands(ndim, x, weight, channels_last)
        spec = _args.conv_spec(ndim, data, weight.shape, stride, padding, dilation, groups,
                               padding_mode)
        plan, bias = _apply(x, weight, bias, data, spec, False, ("padding", padding), out)
        _remember(key, plan)
    return plan(x, weight, bias, out)


def _transpose(ndim: int, x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None,
               stride: IntOrTuple, padding: Padding, output_padding: IntOrTuple, groups: int,
               dilation: IntOrTuple, channels_last: bool, out: np.ndarray | None
               ) -> np.ndarray:
    key, plan = _cached_plan(lambda: (
        "transpose", ndim, _array_key(x), _array_key(weight),
        None if bias is None else _array_key(bias), _key(stride), _key(padding),
        _key(output_padding), _key(groups), _key(dilation), _key(channels_last),
        FORCE_FORWARD_ALGORITHM))
    if plan is None:
        x, weight, data = _operands(ndim, x, weight, channels_last)
        spec = _args.transpose_spec(ndim, data, weight.shape, stride, padding, output_padding,
                                    groups, dilation)
        plan, bias = _apply(x, weight, bias, data, spec, True, ("stride", stride), out)
        _remember(key, plan)
    return plan(x, weight, bias, out)


class _BackwardPlan:
    """Plan of a gradient call: which gradients, their shapes, views and passes."""

    __slots__ = ("adjoint", "dtype", "dynamic", "input_shape", "layout", "weight")

    def __init__(self, dtype: np.dtype, input_shape: tuple[int, ...], layout: tuple,
                 adjoint: Pass | None, weight: Callable | None, dynamic: bool) -> None:
        self.dtype, self.input_shape, self.layout = dtype, input_shape, layout
        self.adjoint, self.weight, self.dynamic = adjoint, weight, dynamic

    def __call__(self, x: np.ndarray | None, weight: np.ndarray | None, grad_output: np.ndarray
                 ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Run the planned call on validated arrays."""
        if self.dynamic:
            with _runtime.dynamic_schedule():
                return self._run(x, weight, grad_output)
        return self._run(x, weight, grad_output)

    def _run(self, x: np.ndarray | None, weight: np.ndarray | None, grad_output: np.ndarray
             ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        dtype = self.dtype
        gy_view = _view(_in_dtype(grad_output, dtype), self.layout)
        grad_input = grad_weight = grad_bias = None
        if self.adjoint is not None:
            grad_input = np.empty(self.input_shape, dtype)
            self.adjoint(gy_view, weight, None, _view(grad_input, self.layout))
        if self.weight is not None:
            src = None if x is None else _view(_in_dtype(x, dtype), self.layout)
            grad_weight, grad_bias = self.weight(src, gy_view)
        return grad_input, grad_weight, grad_bias


def _planned(adjoint: bool, spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
             dest_shape: tuple[int, ...], planar_layout: bool, channels_last: bool = False
             ) -> Pass:
    """The forward (or, with ``adjoint``, adjoint) pass of ``spec`` on the call's layout.

    :func:`_forward_pass` / :func:`_adjoint_pass` on it; a depthwise pass on C-contiguous
    channels-last data (``channels_last``) in place where the depthwise kernel takes it
    (:func:`channels_last_depthwise`, :func:`channels_last_depthwise_adjoint`); else, where
    only copies of the data as planes spare it the gather kernel, on those
    (:func:`_on_planes`).
    """
    forced = FORCE_FORWARD_ALGORITHM
    if channels_last and not planar_layout:
        if not adjoint and channels_last_depthwise(spec, dtype, forced):
            return _DepthwisePass(spec, dtype, dest_shape, channels_last=True)
        if adjoint and channels_last_depthwise_adjoint(spec, dtype, forced):
            return _DepthwisePass(_spread_spec(spec), dtype, dest_shape, adjoint=spec,
                                  channels_last=True)
    plan_pass, choice = (_adjoint_pass, adjoint_choice) if adjoint else (_forward_pass,
                                                                         forward_choice)
    if not planar_layout and _on_planes(lambda on_planes: choice(spec, dtype, on_planes,
                                                                 forced)):
        return _PassOnPlanes(plan_pass(spec, dtype, src_shape, dest_shape, True))
    return plan_pass(spec, dtype, src_shape, dest_shape, planar_layout)


def _planned_weight(spec: ConvSpec, dtype: np.dtype, src_shape: tuple[int, ...],
                    grad_shape: tuple[int, ...], want_weight: bool, want_bias: bool,
                    planar_layout: bool, channels_last: bool = False) -> Callable:
    """:func:`_weight_pass` for the call's layout, in place, or on copies as planes.

    On C-contiguous channels-last data (``channels_last``) the depthwise kernel reads them
    in place where it takes the layer (:func:`channels_last_depthwise_weight`); else the
    copies (:func:`_on_planes`) serve the weight gradient. A bias gradient alone runs on
    any layout.
    """
    forced = FORCE_WEIGHT_ALGORITHM
    if want_weight and not planar_layout:
        if channels_last and channels_last_depthwise_weight(spec, dtype, forced):
            return _DepthwiseWeightPass(spec, dtype, grad_shape, want_bias,
                                        channels_last=True)
        if _on_planes(lambda on_planes: weight_choice(spec, dtype, on_planes, forced)):
            return _WeightPassOnPlanes(_weight_pass(spec, dtype, src_shape, grad_shape, True,
                                                    want_bias, True))
    return _weight_pass(spec, dtype, src_shape, grad_shape, want_weight, want_bias,
                        planar_layout)


def _backward_plan(ndim: int, x: ArrayLike | None, input_shape: tuple[int, ...] | None,
                   weight: ArrayLike | None, weight_shape: tuple[int, ...] | None,
                   grad_output: ArrayLike, stride: IntOrTuple, padding: Padding,
                   dilation: IntOrTuple, groups: int, padding_mode: str, channels_last: bool,
                   needs: frozenset[str]
                   ) -> tuple[_BackwardPlan, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Validate a gradient call (arrays or shapes) and plan it; also returns its arrays."""
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
    input_view = _canonical_shape(ndim, data, data.channels, data.spatial)
    grad_view = _canonical_shape(ndim, data, spec.c_out, spec.out_sizes)
    adjoint = weight_pass = None
    channels = (spec.c_in, spec.c_out)
    if "input" in needs:
        contiguous = gy_arr.flags.c_contiguous
        adjoint = _planned(True, spec, dtype, grad_view, input_view,
                           _planar_ready(data, channels, contiguous),
                           data.channels_last and contiguous)
    if "weight" in needs or "bias" in needs:
        contiguous = gy_arr.flags.c_contiguous and x is not None and named["x"].flags.c_contiguous
        weight_pass = _planned_weight(spec, dtype, input_view, grad_view, "weight" in needs,
                                      "bias" in needs, _planar_ready(data, channels, contiguous),
                                      data.channels_last and contiguous)
    plan = _BackwardPlan(dtype, input_shape, _layout(ndim, data), adjoint, weight_pass,
                         _dynamic(spec, data))
    return plan, named.get("x"), named.get("weight"), gy_arr


def _gradients(kind: str, ndim: int, x: ArrayLike | None, input_shape: object,
               weight: ArrayLike | None, weight_shape: object, grad_output: ArrayLike,
               options: tuple, needs: frozenset[str]
               ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Shared body of the gradient functions; each passes either arrays or shapes.

    ``kind`` names the public function (``"input"``, ``"weight"`` or ``"backward"``): the
    first two validate their shape argument with :func:`fastconv._args.shape_spec` first.
    ``options`` are ``(stride, padding, dilation, groups, padding_mode, channels_last)``.
    """
    key, plan = _cached_plan(lambda: (
        kind, ndim, _key(input_shape) if x is None else _array_key(x),
        _key(weight_shape) if weight is None else _array_key(weight),
        _array_key(grad_output), *[_key(option) for option in options], needs,
        FORCE_FORWARD_ALGORITHM, FORCE_WEIGHT_ALGORITHM))
    if plan is None:
        if kind == "input":
            input_shape = _args.shape_spec("input_shape", input_shape)
        if kind == "weight":
            weight_shape = _args.shape_spec("weight_shape", weight_shape)
        plan, x, weight, grad_output = _backward_plan(ndim, x, input_shape, weight,
                                                      weight_shape, grad_output, *options,
                                                      needs)
        _remember(key, plan)
    return plan(x, weight, grad_output)


class _TransposedWeightPass:
    """Weight and bias gradients of a transposed convolution, called as a conv's weight pass.

    ``(x, grad_output)`` canonical views in, ``(grad_weight, grad_bias)`` out. The transposed
    convolution of ``x`` is the adjoint of the convolution ``spec`` whose output is ``x``
    and whose input is ``grad_output``'s shape: its weight gradient is that convolution's
    weight gradient with the roles swapped (input ``grad_output``, output gradient ``x``),
    and its bias gradient the channel sums of ``grad_output``.
    """

    __slots__ = ("bias", "weight")

    def __init__(self, weight: Callable | None, bias: _BiasPass | None) -> None:
        self.weight, self.bias = weight, bias

    def __call__(self, x: np.ndarray, grad_out: np.ndarray
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
        grad_weight = None if self.weight is None else self.weight(grad_out, x)[0]
        grad_bias = None if self.bias is None else self.bias(None, grad_out)[1]
        return grad_weight, grad_bias


def _transpose_backward_plan(ndim: int, x: ArrayLike, weight: ArrayLike,
                             grad_output: ArrayLike, stride: IntOrTuple, padding: Padding,
                             output_padding: IntOrTuple, groups: int, dilation: IntOrTuple,
                             channels_last: bool, needs: frozenset[str]
                             ) -> tuple[_BackwardPlan, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a transposed convolution's gradient call and plan it; also returns its arrays.

    The gradient with respect to ``x`` is the forward convolution of ``grad_output``.
    """
    x_arr, w_arr, data = _operands(ndim, x, weight, channels_last)
    gy_arr = _args.as_array("grad_output", grad_output)
    spec = _args.transpose_spec(ndim, data, w_arr.shape, stride, padding, output_padding,
                                groups, dilation)
    dtype = _args.result_dtype(x=x_arr, weight=w_arr, grad_output=gy_arr)
    _args.check_grad_output(gy_arr, data.full_shape(spec.c_in, spec.in_sizes))
    x_view = _canonical_shape(ndim, data, spec.c_out, spec.out_sizes)
    grad_view = _canonical_shape(ndim, data, spec.c_in, spec.in_sizes)
    channels = (spec.c_in, spec.c_out)
    input_pass = weights = None
    if "input" in needs:
        contiguous = gy_arr.flags.c_contiguous
        input_pass = _planned(False, spec, dtype, grad_view, x_view,
                              _planar_ready(data, channels, contiguous),
                              data.channels_last and contiguous)
    if "weight" in needs or "bias" in needs:
        weight_pass = bias_pass = None
        if "weight" in needs:
            contiguous = gy_arr.flags.c_contiguous and x_arr.flags.c_contiguous
            weight_pass = _planned_weight(spec, dtype, grad_view, x_view, True, False,
                                          _planar_ready(data, channels, contiguous),
                                          data.channels_last and contiguous)
        if "bias" in needs:  # compiled callers sum on a channels-last view (gather pin)
            planar = (_planar_ready(data, (spec.c_in,), gy_arr.flags.c_contiguous)
                      and FORCE_WEIGHT_ALGORITHM != "gather")
            bias_pass = _BiasPass(dtype, grad_view, planar)
        weights = _TransposedWeightPass(weight_pass, bias_pass)
    plan = _BackwardPlan(dtype, x_arr.shape, _layout(ndim, data), input_pass, weights,
                         _dynamic(spec, data))
    return plan, x_arr, w_arr, gy_arr


def _transpose_gradients(ndim: int, x: ArrayLike, weight: ArrayLike, grad_output: ArrayLike,
                         options: tuple, needs: frozenset[str]
                         ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Body of ``conv_transpose{d}d_backward``.

    ``options`` are ``(stride, padding, output_padding, groups, dilation, channels_last)``.
    """
    key, plan = _cached_plan(lambda: (
        "transpose_backward", ndim, _array_key(x), _array_key(weight),
        _array_key(grad_output), *[_key(option) for option in options], needs,
        FORCE_FORWARD_ALGORITHM, FORCE_WEIGHT_ALGORITHM))
    if plan is None:
        plan, x, weight, grad_output = _transpose_backward_plan(ndim, x, weight, grad_output,
                                                                *options, needs)
        _remember(key, plan)
    return plan(x, weight, grad_output)


_INPUT, _WEIGHT = frozenset({"input"}), frozenset({"weight"})


def _input_grad(ndim: int, input_shape: tuple[int, ...], weight: ArrayLike,
                grad_output: ArrayLike, *options: Any) -> np.ndarray:
    return _gradients("input", ndim, None, input_shape, weight, None, grad_output, options,
                      _INPUT)[0]


def _weight_grad(ndim: int, x: ArrayLike, weight_shape: tuple[int, ...],
                 grad_output: ArrayLike, *options: Any) -> np.ndarray:
    return _gradients("weight", ndim, x, None, None, weight_shape, grad_output, options,
                      _WEIGHT)[1]


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


_TRANSPOSE_BACKWARD_DOC = """Gradients of :func:`conv_transpose{d}d` (input, weight and bias).

The input gradient is the convolution :func:`conv{d}d` of ``grad_output`` with the same
weights, strides, pads, dilation and groups; the weight gradient is that convolution's weight
gradient with ``grad_output`` as its input and ``x`` as its output gradient; the bias
gradient sums ``grad_output`` over every axis but the channels.

Parameters
----------
x : array_like, shape (N, C_in, *spatial) or (C_in, *spatial)
    Input of the transposed convolution; ``(N, *spatial, C_in)`` with
    ``channels_last=True``.
weight : array_like, shape (C_in, C_out / groups, *kernel)
    Filters of the transposed convolution.
grad_output : array_like
    Gradient with respect to its output (same shape as that output).
stride, padding, output_padding, groups, dilation, channels_last
    As in :func:`conv_transpose{d}d`.
needs : collection of {{"input", "weight", "bias"}}, default all three
    Which gradients to compute.

Returns
-------
grad_input, grad_weight, grad_bias : ndarray or None
    ``None`` for each gradient not in ``needs``; ``grad_bias`` has shape ``(C_out,)``.

Examples
--------
>>> import numpy as np
>>> import fastconv
>>> {x_line}
>>> {w_line}
>>> y = fastconv.conv_transpose{d}d(x, w, stride=2)
>>> g = np.ones_like(y)
>>> gx, gw, gb = fastconv.conv_transpose{d}d_backward(x, w, g, stride=2)
>>> gx.shape == x.shape and gw.shape == w.shape and float(gb[0]) == g.size
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
        return _gradients("backward", d, x, None, weight, None, grad_output,
                          (stride, padding, dilation, groups, padding_mode, channels_last),
                          wanted)

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


def _make_transpose_backward(d: int) -> Callable:
    def conv_transpose_backward(x: ArrayLike, weight: ArrayLike, grad_output: ArrayLike,
                                stride: IntOrTuple = 1, padding: Padding = 0,
                                output_padding: IntOrTuple = 0, groups: int = 1,
                                dilation: IntOrTuple = 1, channels_last: bool = False,
                                needs: tuple[str, ...] = ("input", "weight", "bias")
                                ) -> tuple[np.ndarray | None, np.ndarray | None,
                                           np.ndarray | None]:
        wanted = _args.needs_spec(needs)
        return _transpose_gradients(d, x, weight, grad_output,
                                    (stride, padding, output_padding, groups, dilation,
                                     channels_last), wanted)

    return _public(conv_transpose_backward, f"conv_transpose{d}d_backward",
                   _TRANSPOSE_BACKWARD_DOC, d)


conv1d, conv2d, conv3d = (_make_conv(d) for d in (1, 2, 3))
conv1d_input, conv2d_input, conv3d_input = (_make_input(d) for d in (1, 2, 3))
conv1d_weight, conv2d_weight, conv3d_weight = (_make_weight(d) for d in (1, 2, 3))
conv1d_backward, conv2d_backward, conv3d_backward = (_make_backward(d) for d in (1, 2, 3))
conv_transpose1d, conv_transpose2d, conv_transpose3d = (_make_transpose(d) for d in (1, 2, 3))
conv_transpose1d_backward, conv_transpose2d_backward, conv_transpose3d_backward = (
    _make_transpose_backward(d) for d in (1, 2, 3))
