"""fastconv: fast N-D convolution for NumPy arrays, compiled with Numba.

Forward, input-gradient, weight/bias-gradient and transposed convolution in 1-D, 2-D and
3-D, with stride, every form of padding, dilation, groups, bias, padding modes, and
channels-first or channels-last data, in float32 or float64.
"""

from ._explain import PassPlan, explain
from ._precompile import precompile
from ._runtime import FastconvWarning
from .convolution import (
    clear_plans,
    conv1d,
    conv1d_backward,
    conv1d_input,
    conv1d_weight,
    conv2d,
    conv2d_backward,
    conv2d_input,
    conv2d_weight,
    conv3d,
    conv3d_backward,
    conv3d_input,
    conv3d_weight,
    conv_transpose1d,
    conv_transpose1d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose3d,
    conv_transpose3d_backward,
)
from .shapes import ReceptiveField, conv_output_shape, receptive_field

__version__ = "0.1.0"

__all__ = [
    "FastconvWarning",
    "PassPlan",
    "ReceptiveField",
    "clear_plans",
    "conv1d",
    "conv1d_backward",
    "conv1d_input",
    "conv1d_weight",
    "conv2d",
    "conv2d_backward",
    "conv2d_input",
    "conv2d_weight",
    "conv3d",
    "conv3d_backward",
    "conv3d_input",
    "conv3d_weight",
    "conv_output_shape",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_transpose1d_backward",
    "conv_transpose2d_backward",
    "conv_transpose3d_backward",
    "explain",
    "precompile",
    "receptive_field",
]

from . import _embed  # noqa: E402, F401  (registers the Numba overloads for users' @njit code)
