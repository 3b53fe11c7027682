"""Argument normalisation and validation for the public API.

Every check that can fail happens here, before any allocation or compilation, and
raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong value)
with a message naming the parameter, the value received and what is allowed. The code
below this layer assumes valid input.
"""

from __future__ import annotations

import math
import operator
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import _plan
from ._plan import PADDING_MODES, PADDING_STRINGS, Pair

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_BAD_KINDS = {"c": "complex", "O": "object", "U": "string", "S": "bytes", "V": "structured",
              "M": "datetime", "m": "timedelta"}


def _short(value: object) -> str:
    """``repr`` of a value, cut to a readable length for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_array(name: str, value: object) -> np.ndarray:
    """Convert an array-like argument to an ndarray without copying when possible.

    Examples
    --------
    >>> as_array("x", [[1, 2]]).shape
    (1, 2)
    >>> as_array("x", None)
    Traceback (most recent call last):
    ...
    TypeError: x must be an array or array-like of real numbers, got None
    """
    if value is None:
        raise TypeError(f"{name} must be an array or array-like of real numbers, got None")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{name} could not be converted to an array ({error}); got {_short(value)}"
        ) from None
    kind = _BAD_KINDS.get(array.dtype.kind)
    if kind is not None:
        hint = ""
        if kind == "complex":
            hint = " (take the real part, or convolve real and imaginary parts separately)"
        raise TypeError(
            f"{name} has {kind} dtype {array.dtype}; fastconv computes in float32 or float64 "
            f"from real (bool, integer or floating) input{hint}"
        )
    return array


def result_dtype(**arrays: np.ndarray) -> np.dtype:
    """Computation dtype: ``np.result_type(*arrays, np.float32)``, which must be float32/64.

    Examples
    --------
    >>> result_dtype(x=np.zeros(2, np.int16), weight=np.zeros(2, np.float32))
    dtype('float32')
    >>> result_dtype(x=np.zeros(2, np.float32), weight=np.zeros(2, np.float64))
    dtype('float64')
    """
    dtype = np.result_type(*arrays.values(), np.float32)
    if dtype not in SUPPORTED_DTYPES:
        described = ", ".join(f"{name}: {a.dtype}" for name, a in arrays.items())
        raise TypeError(
            f"the arguments' dtypes ({described}) promote to {dtype}; fastconv computes in "
            "float32 or float64: convert with .astype(np.float64)"
        )
    return dtype


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _as_int(name: str, value: object, allowed: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be {allowed}, got {_short(value)}")
    return operator.index(value)


def int_tuple(name: str, value: object, ndim: int, minimum: int) -> tuple[int, ...]:
    """An int, or one int per spatial dimension, each at least ``minimum``.

    Examples
    --------
    >>> int_tuple("stride", 2, 2, 1)
    (2, 2)
    >>> int_tuple("stride", (1, 0), 2, 1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be at least 1 in every dimension, got (1, 0)
    """
    allowed = f"an int or a tuple of {ndim} ints"
    if _is_int(value):
        values = (operator.index(value),) * ndim
    elif isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(
                f"{name} must be {allowed} (one per spatial dimension), got {_short(value)} "
                f"of length {len(value)}"
            )
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{name} must be {allowed}, got {_short(value)}")
        values = tuple(operator.index(v) for v in value)
    else:
        raise TypeError(f"{name} must be {allowed}, got {_short(value)}")
    if any(v < minimum for v in values):
        raise ValueError(
            f"{name} must be at least {minimum} in every dimension, got {_short(value)}"
        )
    return values


def padding_spec(value: object, ndim: int) -> str | tuple[Pair, ...]:
    """Normalise ``padding`` to a string or one ``(low, high)`` pair per dimension.

    Examples
    --------
    >>> padding_spec(1, 2)
    ((1, 1), (1, 1))
    >>> padding_spec((1, (0, 2)), 2)
    ((1, 1), (0, 2))
    >>> padding_spec("same", 1)
    'same'
    """
    allowed = (
        f"an int >= 0, a tuple of {ndim} ints or of {ndim} (low, high) pairs, "
        f"or one of {', '.join(repr(s) for s in PADDING_STRINGS)}"
    )
    if isinstance(value, str):
        if value not in PADDING_STRINGS:
            raise ValueError(f"padding must be {allowed}; got the string {value!r}")
        return value
    if _is_int(value):
        pairs = ((operator.index(value),) * 2,) * ndim
    elif isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(
                f"padding must be {allowed} (one entry per spatial dimension), got "
                f"{_short(value)} of length {len(value)}"
            )
        pairs = tuple(_padding_pair(value, v, allowed) for v in value)
    else:
        raise TypeError(f"padding must be {allowed}, got {_short(value)}")
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"padding must not be negative, got {_short(value)}")
    return tuple(tuple(pair) for pair in pairs)


def _padding_pair(whole: object, entry: object, allowed: str) -> Pair:
    if _is_int(entry):
        return (operator.index(entry),) * 2
    if isinstance(entry, (tuple, list)) and len(entry) == 2 and all(_is_int(v) for v in entry):
        return (operator.index(entry[0]), operator.index(entry[1]))
    raise TypeError(f"padding must be {allowed}, got {_short(whole)}")


def padding_mode_spec(value: object) -> str:
    """Validate ``padding_mode``.

    Examples
    --------
    >>> padding_mode_spec("reflect")
    'reflect'
    """
    if not isinstance(value, str) or value not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {', '.join(repr(m) for m in PADDING_MODES)}, "
            f"got {_short(value)}"
        )
    return value


def flag(name: str, value: object) -> bool:
    """Validate a boolean keyword such as ``channels_last``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_short(value)}")
    return bool(value)


def groups_spec(value: object) -> int:
    """Validate ``groups`` (an int >= 1)."""
    groups = _as_int("groups", value, "an int >= 1")
    if groups < 1:
        raise ValueError(f"groups must be an int >= 1, got {groups}")
    return groups


def needs_spec(value: object) -> frozenset[str]:
    """Validate ``needs`` of the backward functions.

    Examples
    --------
    >>> sorted(needs_spec(("weight", "bias")))
    ['bias', 'weight']
    """
    allowed = ("input", "weight", "bias")
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list, set, frozenset)) or not all(
        isinstance(v, str) and v in allowed for v in value
    ):
        raise ValueError(
            f"needs must be a collection of {', '.join(repr(a) for a in allowed)}, "
            f"got {_short(value)}"
        )
    return frozenset(value)


def shape_spec(name: str, value: object) -> tuple[int, ...]:
    """Validate a shape argument (``input_shape``, ``weight_shape``)."""
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) for v in value):
        raise TypeError(f"{name} must be a tuple of ints, got {_short(value)}")
    shape = tuple(operator.index(v) for v in value)
    if any(v < 0 for v in shape):
        raise ValueError(f"{name} must not have negative sizes, got {shape}")
    return shape


@dataclass(frozen=True)
class DataShape:
    """Batch, channels and spatial sizes of a data array, with its layout."""

    batch: int
    channels: int
    spatial: tuple[int, ...]
    batched: bool
    channels_last: bool

    def full_shape(self, channels: int, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of an array with this batching and layout, other channels and sizes."""
        core = (*spatial, channels) if self.channels_last else (channels, *spatial)
        return (self.batch, *core) if self.batched else core


def data_shape(name: str, shape: tuple[int, ...], ndim: int, channels_last: bool) -> DataShape:
    """Split a data shape into batch, channels and spatial sizes.

    Examples
    --------
    >>> data_shape("x", (8, 3, 32, 32), 2, False)
    DataShape(batch=8, channels=3, spatial=(32, 32), batched=True, channels_last=False)
    >>> data_shape("x", (32, 32, 3), 2, True).channels
    3
    """
    if len(shape) not in (ndim + 1, ndim + 2):
        layout = "N, *spatial, C" if channels_last else "N, C, *spatial"
        raise ValueError(
            f"{name} must have {ndim + 2} dims ({layout}) or {ndim + 1} (unbatched) for a "
            f"{ndim}-D convolution, got shape {shape}"
        )
    batched = len(shape) == ndim + 2
    core = shape[1:] if batched else shape
    channels, spatial = (core[-1], core[:-1]) if channels_last else (core[0], core[1:])
    return DataShape(shape[0] if batched else 1, channels, tuple(spatial), batched, channels_last)


def weight_dims(name: str, shape: tuple[int, ...], ndim: int) -> None:
    """Check the weight has ``ndim + 2`` dimensions."""
    if len(shape) != ndim + 2:
        raise ValueError(
            f"{name} must have {ndim + 2} dims (out_channels, in_channels/groups, "
            f"*kernel) for a {ndim}-D convolution, got shape {shape}"
        )


@dataclass(frozen=True)
class ConvSpec:
    """A validated convolution: channels, groups and per-dimension geometry."""

    ndim: int
    c_in: int
    c_out: int
    groups: int
    in_sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[Pair, ...]
    out_sizes: tuple[int, ...]
    padding_mode: str

    def geometry(self, adjoint: bool) -> np.ndarray:
        """Geometry records of the three canonical dims (see :func:`fastconv._plan.geometry`)."""
        return _plan.geometry_table(adjoint, self.in_sizes, self.out_sizes, self.kernel,
                                    self.stride, self.dilation, self.pads, self.padding_mode)


@lru_cache(maxsize=1)
def _memory_limit() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 2**46


def check_size(name: str, value: object, shape: tuple[int, ...], itemsize: int) -> None:
    """Refuse a result too large for this machine's memory before allocating it."""
    needed = math.prod(shape) * itemsize
    if needed > _memory_limit():
        raise ValueError(
            f"{name}={_short(value)} gives a result of shape {shape} ({needed / 2**30:.3g} GiB), "
            "larger than this machine's memory"
        )


def conv_spec(
    ndim: int,
    data: DataShape,
    weight_shape: tuple[int, ...],
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
    padding_mode: object,
    weight_name: str = "weight",
) -> ConvSpec:
    """Validate a forward convolution's parameters against the data and weight shapes."""
    weight_dims(weight_name, weight_shape, ndim)
    strides = int_tuple("stride", stride, ndim, 1)
    dilations = int_tuple("dilation", dilation, ndim, 1)
    group_count = groups_spec(groups)
    mode = padding_mode_spec(padding_mode)
    padding_value = padding_spec(padding, ndim)
    c_out, c_in_group, kernel = weight_shape[0], weight_shape[1], tuple(weight_shape[2:])
    label = f"{weight_name}[1]" if weight_name.endswith("_shape") else f"{weight_name}.shape[1]"
    check_groups(data.channels, c_out, c_in_group, group_count, label, weight_shape)
    if any(k < 1 for k in kernel):
        raise ValueError(f"{weight_name} kernel sizes must be at least 1, got {weight_shape}")
    pads = _plan.resolve_pads(padding_value, data.spatial, kernel, strides, dilations)
    check_pad_mode(mode, pads, data.spatial, padding)
    out_sizes = []
    for axis, (n, k, s, d, p) in enumerate(zip(data.spatial, kernel, strides, dilations, pads)):
        if n + p[0] + p[1] < _plan.effective_kernel(k, d):
            raise ValueError(
                f"the dilated kernel (size {k}, dilation {d}: span "
                f"{_plan.effective_kernel(k, d)}) is larger than the padded input "
                f"(size {n} + padding {p[0]}+{p[1]}) in spatial dim {axis}; "
                f"use a smaller kernel or dilation, or more padding (padding={_short(padding)})"
            )
        out_sizes.append(_plan.conv_out_size(n, k, s, p, d))
    return ConvSpec(ndim, data.channels, c_out, group_count, data.spatial, kernel, strides,
                    dilations, pads, tuple(out_sizes), mode)


def check_groups(c_in: int, c_out: int, c_in_group: int, groups: int, label: str,
                 weight_shape: tuple[int, ...]) -> None:
    """Check channel counts against ``groups`` and the weight shape (``label`` names C_in/G)."""
    if c_in != c_in_group * groups:
        raise ValueError(
            f"input channels ({c_in}) must equal {label} * groups = {c_in_group} * {groups} = "
            f"{c_in_group * groups} (weight shape {weight_shape})"
        )
    if c_out % groups:
        raise ValueError(
            f"groups={groups} must divide the output channels ({c_out}, weight shape "
            f"{weight_shape})"
        )


def check_pad_mode(mode: str, pads: tuple[Pair, ...], sizes: tuple[int, ...],
                   padding: object) -> None:
    """Reflect pads must be smaller than the input, circular pads at most its size."""
    for axis, ((low, high), n) in enumerate(zip(pads, sizes)):
        if mode != "zeros" and n == 0 and max(low, high) > 0:
            raise ValueError(
                f"padding_mode={mode!r} cannot pad an empty spatial dim (dim {axis} has size 0 "
                f"and padding {(low, high)}); use padding_mode='zeros'"
            )
        if mode == "reflect" and max(low, high) >= n and max(low, high) > 0:
            raise ValueError(
                f"padding_mode='reflect' needs padding smaller than the input size in every "
                f"dim; spatial dim {axis} has size {n} and padding {(low, high)} "
                f"(padding={_short(padding)})"
            )
        if mode == "circular" and max(low, high) > n:
            raise ValueError(
                f"padding_mode='circular' needs padding at most the input size in every dim; "
                f"spatial dim {axis} has size {n} and padding {(low, high)} "
                f"(padding={_short(padding)})"
            )


def transpose_spec(
    ndim: int,
    data: DataShape,
    weight_shape: tuple[int, ...],
    stride: object,
    padding: object,
    output_padding: object,
    groups: object,
    dilation: object,
) -> ConvSpec:
    """Validate a transposed convolution; returns the spec of the forward conv it is the adjoint of.

    In the returned spec, ``in_sizes`` are the transposed convolution's output sizes and
    ``out_sizes`` its input sizes.
    """
    weight_dims("weight", weight_shape, ndim)
    strides = int_tuple("stride", stride, ndim, 1)
    dilations = int_tuple("dilation", dilation, ndim, 1)
    extra = int_tuple("output_padding", output_padding, ndim, 0)
    group_count = groups_spec(groups)
    padding_value = padding_spec(padding, ndim)
    c_in, c_out_group, kernel = weight_shape[0], weight_shape[1], tuple(weight_shape[2:])
    if data.channels != c_in:
        raise ValueError(
            f"input channels ({data.channels}) must equal weight.shape[0] ({c_in}) for a "
            f"transposed convolution (weight shape {weight_shape})"
        )
    if c_in % group_count:
        raise ValueError(f"groups={group_count} must divide the input channels ({c_in})")
    if any(k < 1 for k in kernel):
        raise ValueError(f"weight kernel sizes must be at least 1, got {weight_shape}")
    for axis, (e, s, d) in enumerate(zip(extra, strides, dilations)):
        if e >= max(s, d):
            raise ValueError(
                f"output_padding must be smaller than max(stride, dilation) in every dim; "
                f"spatial dim {axis} has output_padding {e}, stride {s}, dilation {d} "
                f"(output_padding={_short(output_padding)})"
            )
    full_in = tuple(n * s for n, s in zip(data.spatial, strides))
    pads = _plan.resolve_pads(padding_value, full_in, kernel, strides, dilations)
    out_sizes = tuple(
        _plan.transpose_out_size(n, k, s, p, d, e)
        for n, k, s, p, d, e in zip(data.spatial, kernel, strides, pads, dilations, extra)
    )
    if any(o < 0 for o in out_sizes):
        raise ValueError(
            f"padding={_short(padding)} removes more than the transposed convolution produces: "
            f"output sizes would be {out_sizes}"
        )
    return ConvSpec(ndim, c_out_group * group_count, c_in, group_count, out_sizes, kernel,
                    strides, dilations, pads, data.spatial, "zeros")


def check_out(out: object, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """Validate ``out=``: a writeable C-contiguous ndarray of exactly the result shape and dtype."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy.ndarray or None, got {type(out).__name__}")
    problems = []
    if out.shape != shape:
        problems.append(f"shape {out.shape} (expected {shape})")
    if out.dtype != dtype:
        problems.append(f"dtype {out.dtype} (expected {dtype})")
    if not out.flags.c_contiguous:
        problems.append("non-C-contiguous memory (expected C-contiguous)")
    if not out.flags.writeable:
        problems.append("read-only memory (expected writeable)")
    if problems:
        raise ValueError("out has " + ", ".join(problems))
    return out


def check_bias(bias: object, length: int) -> np.ndarray | None:
    """Validate ``bias``: ``None`` or a 1-D array of ``length`` values."""
    if bias is None:
        return None
    array = as_array("bias", bias)
    if array.shape != (length,):
        raise ValueError(
            f"bias must be 1-D with one value per output channel (shape ({length},)), got "
            f"shape {array.shape}"
        )
    return array


def check_grad_output(grad_output: np.ndarray, expected: tuple[int, ...]) -> None:
    """Check ``grad_output`` has the shape the forward convolution produces."""
    if grad_output.shape != expected:
        raise ValueError(
            f"grad_output has shape {grad_output.shape} but the convolution described by the "
            f"other arguments produces shape {expected}"
        )
