"""Shape arithmetic of convolutions, usable without any data."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from . import _args, _plan

__all__ = ["ReceptiveField", "conv_output_shape", "receptive_field"]

IntOrTuple = int | tuple[int, ...]


def conv_output_shape(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: int | str | tuple = 0,
    dilation: IntOrTuple = 1,
    *,
    transposed: bool = False,
    output_padding: IntOrTuple = 0,
) -> IntOrTuple:
    """Output spatial size of a convolution (or transposed convolution).

    Convolution: ``(n + pad_low + pad_high - dilation * (k - 1) - 1) // stride + 1``.
    Transposed: ``(n - 1) * stride - pad_low - pad_high + dilation * (k - 1) +
    output_padding + 1``.

    Parameters
    ----------
    input_size : int or tuple of ints
        Spatial size of the input; a tuple gives one size per dimension.
    kernel_size : int or tuple of ints
        Kernel size, one per dimension or one for all.
    stride, dilation : int or tuple of ints, default 1
        As in :func:`fastconv.conv2d`.
    padding : int, tuple, or {"valid", "same", "full"}, default 0
        Every form :func:`fastconv.conv2d` accepts.
    transposed : bool, default False
        Size of :func:`fastconv.conv_transpose2d` (and friends) instead.
    output_padding : int or tuple of ints, default 0
        Only for ``transposed=True``.

    Returns
    -------
    int or tuple of ints
        An int when ``input_size`` is an int, else one size per dimension.

    Raises
    ------
    ValueError
        When the dilated kernel is larger than the padded input.

    Examples
    --------
    >>> from fastconv import conv_output_shape
    >>> conv_output_shape(224, 7, stride=2, padding=3)
    112
    >>> conv_output_shape((28, 28), 3, stride=2, padding="same")
    (14, 14)
    >>> conv_output_shape(28, 4, stride=2, padding=1, transposed=True)
    56
    """
    scalar = not isinstance(input_size, (tuple, list))
    sizes = (input_size,) if scalar else tuple(input_size)
    ndim = len(sizes)
    sizes = _args.int_tuple("input_size", tuple(sizes), ndim, 0)
    kernel = _args.int_tuple("kernel_size", kernel_size, ndim, 1)
    data = _args.DataShape(1, 1, sizes, True, False)
    weight_shape = (1, 1, *kernel)
    if transposed:
        spec = _args.transpose_spec(ndim, data, weight_shape, stride, padding,
                                    output_padding, 1, dilation)
        result = spec.in_sizes
    else:
        spec = _args.conv_spec(ndim, data, weight_shape, stride, padding, dilation, 1,
                               "zeros", "kernel_size")
        result = spec.out_sizes
    return result[0] if scalar else result


class ReceptiveField(NamedTuple):
    """Receptive field of a stack of layers.

    Attributes
    ----------
    size : int or tuple of ints
        Input positions one output position depends on.
    jump : int or tuple of ints
        Input distance between neighbouring output positions (the product of strides).
    """

    size: IntOrTuple
    jump: IntOrTuple


def _layer_values(layer: object) -> tuple[object, object, object]:
    if isinstance(layer, Mapping):
        unknown = set(layer) - {"kernel_size", "stride", "dilation"}
        if unknown or "kernel_size" not in layer:
            raise ValueError(
                "a layer mapping needs 'kernel_size' and may have 'stride' and 'dilation'; "
                f"got keys {sorted(layer)}"
            )
        return layer["kernel_size"], layer.get("stride", 1), layer.get("dilation", 1)
    if isinstance(layer, (tuple, list)) and 1 <= len(layer) <= 3:
        kernel, stride, dilation = (*layer, 1, 1)[:3]
        return kernel, stride, dilation
    raise TypeError(
        "each layer must be a (kernel, [stride, [dilation]]) tuple or a mapping with "
        f"'kernel_size', 'stride', 'dilation'; got {layer!r}"
    )


def receptive_field(layers: Iterable[tuple | Mapping]) -> ReceptiveField:
    """Receptive field size and jump (effective stride) of a stack of convolution layers.

    Starting from ``size = jump = 1``, each layer with kernel ``k``, stride ``s`` and
    dilation ``d`` gives ``size += d * (k - 1) * jump`` and then ``jump *= s``.
    Pooling layers count as convolutions with their window and stride.

    Parameters
    ----------
    layers : iterable of tuples or mappings
        Each layer as ``(kernel,)``, ``(kernel, stride)``, ``(kernel, stride, dilation)``
        or a mapping with ``"kernel_size"`` and optional ``"stride"``, ``"dilation"``.
        Values are ints, or one int per spatial dimension.

    Returns
    -------
    ReceptiveField
        ``(size, jump)``; tuples when any layer gives per-dimension values.

    Examples
    --------
    >>> from fastconv import receptive_field
    >>> receptive_field([(3,), (3,), (3,)])
    ReceptiveField(size=7, jump=1)
    >>> receptive_field([(7, 2), (3, 2), (3, 1, 2)])
    ReceptiveField(size=27, jump=4)
    >>> receptive_field([{"kernel_size": (3, 5), "stride": 2}])
    ReceptiveField(size=(3, 5), jump=(2, 2))
    """
    values = [_layer_values(layer) for layer in layers]
    ndim = max(
        (len(v) for layer in values for v in layer if isinstance(v, (tuple, list))), default=0
    )
    dims = max(ndim, 1)
    size, jump = [1] * dims, [1] * dims
    for kernel, stride, dilation in values:
        k = _args.int_tuple("kernel_size", kernel, dims, 1)
        s = _args.int_tuple("stride", stride, dims, 1)
        d = _args.int_tuple("dilation", dilation, dims, 1)
        for axis in range(dims):
            size[axis] += (_plan.effective_kernel(k[axis], d[axis]) - 1) * jump[axis]
            jump[axis] *= s[axis]
    if ndim == 0:
        return ReceptiveField(operator.index(size[0]), operator.index(jump[0]))
    return ReceptiveField(tuple(size), tuple(jump))
