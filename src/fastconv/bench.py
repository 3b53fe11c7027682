"""Benchmark fastconv beside its peers: the ``fastconv bench`` command and its pieces.

The pieces are shared by the command and by the asv suite in ``benchmarks/``:

- :data:`CASES`, the benchmark case list (:class:`Case`), with FLOP counts;
- :func:`make_problem`, which builds the data of one case and pass and the calls that
  compute it with fastconv and with every peer (PyTorch, SciPy, a naive NumPy
  implementation) that is installed and computes the same thing;
- :func:`interleaved_best`, which times fastconv and its peers in the same process with
  their calls interleaved (ours, peer, ours, peer, ...) and keeps the best of several, so
  ratios hold on a noisy machine;
- :func:`machine_peak`, a short fused-multiply-add probe that measures this machine's
  floating-point peak (never a hard-coded number);
- :func:`naive_conv`, :func:`naive_conv_input` and :func:`naive_conv_weight`, the naive
  NumPy peer.

This module uses only fastconv's public API, so it can also be loaded from a source tree
to benchmark an installed fastconv of another commit. PyTorch, SciPy and matplotlib are
optional: they are imported only when used, and a missing one is reported, never fatal.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import itertools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

import fastconv

__all__ = [
    "CASES",
    "EXTRA_CASES",
    "PASSES",
    "PEERS",
    "SMOKE_ENV",
    "Case",
    "Measurement",
    "Problem",
    "available_peers",
    "benchmark_cases",
    "case_by_name",
    "format_table",
    "interleaved_best",
    "machine_peak",
    "main",
    "make_problem",
    "plot",
    "naive_conv",
    "naive_conv_input",
    "naive_conv_weight",
    "peer_applies",
    "relative_error",
    "run",
    "set_threads",
]

PASSES = ("forward", "grad_input", "grad_weight")
"""Passes of every case: forward, gradient w.r.t. the input, gradient w.r.t. weight and bias."""

PEERS = ("torch", "scipy", "numpy")
"""Peers fastconv is compared with, in table order (``numpy`` is the naive implementation)."""

SMOKE_ENV = "FASTCONV_BENCH_SMOKE"
"""Environment variable: when set to a non-empty value other than ``0``, the asv suite runs
every case shrunk by :meth:`Case.smoke` (for CI smoke runs; the case list is unchanged)."""

_TOLERANCE = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}


# ------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One convolution layer of the benchmark case list.

    Parameters
    ----------
    name : str
        Short identifier (used by ``--cases`` and as the asv parameter value).
    description : str
        What the layer is, in words.
    batch : int
        Batch size ``N``.
    in_channels, out_channels : int
        Channels of the input ``x`` and of the result. For a transposed convolution these are
        the channels of its own input and output (weight ``(in, out // groups, *kernel)``).
    spatial : tuple of int
        Spatial size of the input ``x``; its length is the number of spatial dimensions.
    kernel : tuple of int
        Kernel size, one per spatial dimension.
    stride, padding, dilation, groups : int
        Convolution parameters, the same in every dimension (padding on both sides).
    transposed : bool
        Whether the forward pass is a transposed convolution.
    output_padding : int
        Extra size at the end of a transposed convolution's output.
    """

    name: str
    description: str
    batch: int
    in_channels: int
    out_channels: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    transposed: bool = False
    output_padding: int = 0

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.spatial)

    @property
    def output_spatial(self) -> tuple[int, ...]:
        """Spatial size of the result of the forward pass.

        ``(n + 2p - d(k-1) - 1) // s + 1`` for a convolution,
        ``(n - 1)s - 2p + d(k-1) + output_padding + 1`` for a transposed convolution.
        """
        s, p, d = self.stride, self.padding, self.dilation
        if self.transposed:
            return tuple((n - 1) * s - 2 * p + d * (k - 1) + self.output_padding + 1
                         for n, k in zip(self.spatial, self.kernel))
        return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                     for n, k in zip(self.spatial, self.kernel))

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """``(out, in // groups, *kernel)``, or ``(in, out // groups, *kernel)`` if transposed."""
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, *self.kernel)
        return (self.out_channels, self.in_channels // self.groups, *self.kernel)

    @property
    def flops(self) -> int:
        """Floating-point operations of one pass: 2 per multiply-add of the convolution.

        The count is that of the (adjoint) convolution, ``2 * N * C_out * prod(out_spatial)
        * C_in / groups * prod(kernel)`` with the roles of input and output swapped for a
        transposed convolution; the three passes cost the same. Bias additions are ignored.
        """
        taps = math.prod(self.kernel)
        if self.transposed:
            points = self.batch * math.prod(self.spatial) * self.in_channels
            return 2 * points * (self.out_channels // self.groups) * taps
        points = self.batch * math.prod(self.output_spatial) * self.out_channels
        return 2 * points * (self.in_channels // self.groups) * taps

    def smoke(self) -> Case:
        """The same layer shrunk for a smoke run: batch 1, each spatial size divided by 4.

        Returns
        -------
        Case
            A copy with ``batch=1`` and spatial sizes ``max(n // 4, d(k-1) + 1)``.
        """
        spatial = tuple(max(n // 4, self.dilation * (k - 1) + 1)
                        for n, k in zip(self.spatial, self.kernel))
        return dataclasses.replace(self, batch=1, spatial=spatial)


CASES: tuple[Case, ...] = (
    Case("conv3x3_64", "3x3 64->64 at 56x56", 8, 64, 64, (56, 56), (3, 3), padding=1),
    Case("conv3x3_128", "3x3 128->128 at 28x28", 8, 128, 128, (28, 28), (3, 3), padding=1),
    Case("conv3x3_256", "3x3 256->256 at 14x14", 8, 256, 256, (14, 14), (3, 3), padding=1),
    Case("conv1x1_256to64", "1x1 256->64 at 56x56", 8, 256, 64, (56, 56), (1, 1)),
    Case("stem7x7s2", "7x7 stride-2 stem 3->64 at 224x224", 8, 3, 64, (224, 224), (7, 7),
         stride=2, padding=3),
    Case("conv3x3s2_128to256", "3x3 stride-2 128->256 at 28x28", 8, 128, 256, (28, 28),
         (3, 3), stride=2, padding=1),
    Case("depthwise3x3_256", "depthwise 3x3 256 channels at 56x56", 8, 256, 256, (56, 56),
         (3, 3), padding=1, groups=256),
    Case("grouped3x3_g32", "grouped 3x3 (32 groups) 128->128 at 28x28", 8, 128, 128,
         (28, 28), (3, 3), padding=1, groups=32),
    Case("dilated3x3_d2", "dilated 3x3 (dilation 2) 64->64 at 56x56", 8, 64, 64, (56, 56),
         (3, 3), padding=2, dilation=2),
    Case("image5x5", "single-channel 1024x1024 image, 5x5 kernel (batch 1)", 1, 1, 1,
         (1024, 1024), (5, 5), padding=2),
    Case("conv1d_k9", "conv1d 32->32, kernel 9, 16000 samples (batch 4)", 4, 32, 32,
         (16000,), (9,), padding=4),
    Case("conv3d_3x3x3", "conv3d 16->32, 3x3x3, 32^3 (batch 2)", 2, 16, 32, (32, 32, 32),
         (3, 3, 3), padding=1),
    Case("transposed4x4s2", "transposed 4x4 stride-2 64->32 at 28x28", 8, 64, 32, (28, 28),
         (4, 4), stride=2, padding=1, transposed=True),
    Case("tiny3x3", "tiny 1x3x8x8 input, 3x3 kernel, 3->8 (per-call overhead)", 1, 3, 8,
         (8, 8), (3, 3), padding=1),
)
"""The benchmark case list (float32 unless a dtype is given; batch 8 unless stated)."""

EXTRA_CASES: tuple[Case, ...] = (
    Case("dw3x3s2_256", "depthwise 3x3 stride 2, 256 channels at 56x56", 8, 256, 256,
         (56, 56), (3, 3), stride=2, padding=1, groups=256),
    Case("dw3x3s2_32", "depthwise 3x3 stride 2, 32 channels at 112x112", 8, 32, 32,
         (112, 112), (3, 3), stride=2, padding=1, groups=32),
    Case("dw5x5s2_240", "depthwise 5x5 stride 2, 240 channels at 28x28", 8, 240, 240,
         (28, 28), (5, 5), stride=2, padding=2, groups=240),
    Case("g32s2_256", "grouped 3x3 (32 groups) stride 2, 256 channels at 56x56", 8, 256, 256,
         (56, 56), (3, 3), stride=2, padding=1, groups=32),
    Case("dw3x3d2_256", "depthwise 3x3 dilation 2, 256 channels at 56x56", 8, 256, 256,
         (56, 56), (3, 3), padding=2, dilation=2, groups=256),
    Case("dw5x5_240", "depthwise 5x5, 240 channels at 28x28", 8, 240, 240, (28, 28), (5, 5),
         padding=2, groups=240),
    Case("image5x5s2", "single-channel 1024x1024 image, 5x5 kernel, stride 2 (batch 1)", 1, 1,
         1, (1024, 1024), (5, 5), stride=2, padding=2),
    Case("dw7x7_384", "depthwise 7x7, 384 channels at 14x14 (a ConvNeXt block)", 8, 384, 384,
         (14, 14), (7, 7), padding=3, groups=384),
    Case("dw3x3_960", "depthwise 3x3, 960 channels at 7x7", 8, 960, 960, (7, 7), (3, 3),
         padding=1, groups=960),
)
"""Layers beyond :data:`CASES` (not part of its yardstick): the downsampling blocks of
MobileNet / ResNeXt style networks (depthwise and grouped layers strided along every
dimension), depthwise variants and depthwise layers on small planes (the depthwise
kernel's); the asv suite times them too, and ``tools/extra_cases.py`` against PyTorch."""


def case_by_name(name: str) -> Case:
    """The case of :data:`CASES` called ``name``.

    Parameters
    ----------
    name : str
        A case name, e.g. ``"conv3x3_64"``.

    Returns
    -------
    Case

    Raises
    ------
    ValueError
        If no case has that name; the message lists the names.

    Examples
    --------
    >>> case = case_by_name("conv3x3_64")
    >>> case.output_spatial, case.flops
    ((56, 56), 1849688064)
    """
    for case in CASES:
        if case.name == name:
            return case
    names = ", ".join(c.name for c in CASES)
    raise ValueError(f"unknown case {name!r}; the cases are: {names}")


def benchmark_cases(smoke: bool | None = None) -> dict[str, Case]:
    """The case list by name, shrunk with :meth:`Case.smoke` for smoke runs.

    Parameters
    ----------
    smoke : bool, optional
        Shrink every case. By default, whether the environment variable :data:`SMOKE_ENV`
        is set to a value other than ``""`` and ``"0"``.

    Returns
    -------
    dict of str to Case
    """
    if smoke is None:
        smoke = os.environ.get(SMOKE_ENV, "") not in ("", "0")
    return {c.name: (c.smoke() if smoke else c) for c in CASES}


# ------------------------------------------------------------------------- naive NumPy
def _tap_slices(tap: Sequence[int], out_spatial: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int]) -> tuple[slice, ...]:
    """Index of the padded-input window that kernel tap ``tap`` reads, for every output point.

    In each dimension ``slice(t*d, t*d + (o-1)*s + 1, s)``, channels-first with two
    leading full slices.
    """
    return (slice(None), slice(None)) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, o, s, d in zip(tap, out_spatial, stride, dilation)
    )


def _conv_geometry(input_spatial: Sequence[int], kernel: Sequence[int], stride: int,
                   padding: int, dilation: int) -> tuple[tuple[int, ...], ...]:
    """Per-dimension ``stride``, ``dilation``, ``padding`` tuples and the output size."""
    nd = len(kernel)
    strides, dilations, pads = (stride,) * nd, (dilation,) * nd, (padding,) * nd
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(input_spatial, kernel, strides, pads, dilations))
    return strides, dilations, pads, out


def naive_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
               stride: int = 1, padding: int = 0, dilation: int = 1,
               groups: int = 1) -> np.ndarray:
    """N-D cross-correlation in plain NumPy: one batched matrix product per kernel tap.

    Parameters
    ----------
    x : ndarray
        Input, ``(N, C_in, *spatial)``.
    weight : ndarray
        ``(C_out, C_in // groups, *kernel)``.
    bias : ndarray, optional
        ``(C_out,)``.
    stride, padding, dilation, groups : int
        The same in every dimension; zero padding on both sides.

    Returns
    -------
    ndarray
        ``(N, C_out, *out_spatial)``, in the dtype of ``x``.

    Notes
    -----
    For every tap, the strided window of the zero-padded input is multiplied by the tap's
    ``(C_out/G, C_in/G)`` weight matrix of each group (``np.matmul``, so BLAS for large
    channel counts) and accumulated. This is what one writes without a convolution library.

    Examples
    --------
    >>> x = np.arange(5.0).reshape(1, 1, 5)
    >>> naive_conv(x, np.array([[[1.0, 0.0, -1.0]]]), padding=1)
    array([[[-1., -2., -2., -2.,  3.]]])
    """
    n, c_in = x.shape[:2]
    c_out, c_group, *kernel = weight.shape
    strides, dilations, pads, out_spatial = _conv_geometry(x.shape[2:], kernel, stride,
                                                           padding, dilation)
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pads])
    grouped_w = weight.reshape(groups, c_out // groups, c_group, *kernel)
    result = np.zeros((n, groups, c_out // groups, math.prod(out_spatial)), x.dtype)
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = padded[_tap_slices(tap, out_spatial, strides, dilations)]
        result += grouped_w[(Ellipsis, *tap)] @ window.reshape(n, groups, c_group, -1)
    result = result.reshape(n, c_out, *out_spatial)
    if bias is not None:
        result += bias.reshape(-1, *(1,) * len(kernel))
    return result


def naive_conv_input(input_shape: Sequence[int], weight: np.ndarray, grad_output: np.ndarray,
                     stride: int = 1, padding: int = 0, dilation: int = 1,
                     groups: int = 1) -> np.ndarray:
    """Gradient of :func:`naive_conv` with respect to its input, in plain NumPy.

    Parameters
    ----------
    input_shape : sequence of int
        ``(N, C_in, *spatial)`` of the convolution's input.
    weight : ndarray
        ``(C_out, C_in // groups, *kernel)``.
    grad_output : ndarray
        ``(N, C_out, *out_spatial)``.
    stride, padding, dilation, groups : int
        As for :func:`naive_conv`.

    Returns
    -------
    ndarray
        ``input_shape``; also the transposed convolution of ``grad_output``.
    """
    n, c_in, *spatial = input_shape
    c_out, c_group, *kernel = weight.shape
    strides, dilations, pads, out_spatial = _conv_geometry(spatial, kernel, stride,
                                                           padding, dilation)
    padded_shape = [n, c_in] + [s + 2 * p for s, p in zip(spatial, pads)]
    grad_padded = np.zeros(padded_shape, grad_output.dtype)
    grouped_w = weight.reshape(groups, c_out // groups, c_group, *kernel)
    grad_grouped = grad_output.reshape(n, groups, c_out // groups, -1)
    for tap in itertools.product(*(range(k) for k in kernel)):
        contribution = np.swapaxes(grouped_w[(Ellipsis, *tap)], -1, -2) @ grad_grouped
        grad_padded[_tap_slices(tap, out_spatial, strides, dilations)] += (
            contribution.reshape(n, c_in, *out_spatial))
    inner = (slice(None), slice(None)) + tuple(slice(p, p + s) for s, p in zip(spatial, pads))
    return grad_padded[inner]


def naive_conv_weight(x: np.ndarray, weight_shape: Sequence[int], grad_output: np.ndarray,
                      stride: int = 1, padding: int = 0, dilation: int = 1,
                      groups: int = 1) -> np.ndarray:
    """Gradient of :func:`naive_conv` with respect to its weight, in plain NumPy.

    Parameters
    ----------
    x : ndarray
        ``(N, C_in, *spatial)``.
    weight_shape : sequence of int
        ``(C_out, C_in // groups, *kernel)``.
    grad_output : ndarray
        ``(N, C_out, *out_spatial)``.
    stride, padding, dilation, groups : int
        As for :func:`naive_conv`.

    Returns
    -------
    ndarray
        ``weight_shape``. (The bias gradient is ``grad_output.sum`` over all axes but 1.)
    """
    n = x.shape[0]
    c_out, c_group, *kernel = weight_shape
    strides, dilations, pads, out_spatial = _conv_geometry(x.shape[2:], kernel, stride,
                                                           padding, dilation)
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pads])
    grad_grouped = grad_output.reshape(n, groups, c_out // groups, -1)
    grad_w = np.empty((groups, c_out // groups, c_group, *kernel), grad_output.dtype)
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = padded[_tap_slices(tap, out_spatial, strides, dilations)]
        window = window.reshape(n, groups, c_group, -1)
        grad_w[(Ellipsis, *tap)] = (grad_grouped @ np.swapaxes(window, -1, -2)).sum(axis=0)
    return grad_w.reshape(weight_shape)


# ---------------------------------------------------------------------------- problems
@dataclass
class Problem:
    """The data of one case, pass and dtype, and the calls that compute it.

    Attributes
    ----------
    case : Case
    pass_name : str
        One of :data:`PASSES`.
    dtype : numpy.dtype
    flops : int
        Floating-point operations of one call (:attr:`Case.flops`).
    ours : callable
        Computes the pass with fastconv (no arguments; returns the result).
    peers : dict of str to callable
        The same computation by each requested peer that is installed and applies.
    arrays : dict of str to ndarray
        The operands (``x``, ``weight``, ``bias``, ``grad_output``).
    """

    case: Case
    pass_name: str
    dtype: np.dtype
    flops: int
    ours: Callable[[], Any]
    peers: dict[str, Callable[[], Any]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _optional(module: str) -> Any | None:
    """Import ``module``, or return None if it is not installed (or fails to import)."""
    try:
        return importlib.import_module(module)
    except Exception:  # a broken optional peer is reported as missing, never fatal
        return None


def available_peers() -> dict[str, str]:
    """The peers that are installed, with a version string.

    Returns
    -------
    dict of str to str
        Subset of :data:`PEERS`; ``numpy`` (the naive implementation) is always present.
    """
    found = {}
    torch = _optional("torch")
    if torch is not None:
        found["torch"] = str(torch.__version__)
    scipy = _optional("scipy")
    if scipy is not None and _optional("scipy.ndimage") and _optional("scipy.signal"):
        found["scipy"] = str(scipy.__version__)
    found["numpy"] = f"{np.__version__} (naive)"
    return found


def set_threads(threads: int | None) -> int:
    """Run fastconv (Numba) and, if it is imported, PyTorch on ``threads`` threads.

    Parameters
    ----------
    threads : int or None
        Thread count; None keeps Numba's current count (PyTorch is matched to it).

    Returns
    -------
    int
        The thread count in force.

    Raises
    ------
    ValueError
        If ``threads`` is below 1 or above the count Numba was started with
        (``NUMBA_NUM_THREADS``, which can only be lowered at run time).
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if threads is not None:
        if not 1 <= threads <= limit:
            raise ValueError(f"threads={threads} is not available: choose 1 to {limit} "
                             f"(NUMBA_NUM_THREADS={limit})")
        numba.set_num_threads(threads)
    threads = numba.get_num_threads()
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads)
    return threads


def _fastconv_calls(case: Case, pass_name: str, a: Mapping[str, np.ndarray]
                    ) -> Callable[[], Any]:
    """The fastconv call computing ``pass_name`` of ``case`` on the operands ``a``."""
    nd = case.ndim
    conv = getattr(fastconv, f"conv{nd}d")
    opts = {"stride": case.stride, "padding": case.padding, "dilation": case.dilation,
            "groups": case.groups}
    x, w, b, g = a["x"], a["weight"], a["bias"], a["grad_output"]
    if case.transposed:
        transpose = getattr(fastconv, f"conv_transpose{nd}d")
        transpose_backward = getattr(fastconv, f"conv_transpose{nd}d_backward")
        if pass_name == "forward":
            return lambda: transpose(x, w, b, output_padding=case.output_padding, **opts)
        if pass_name == "grad_input":  # the adjoint of a transposed conv is the conv
            return lambda: conv(g, w, **opts)
        return lambda: transpose_backward(x, w, g, output_padding=case.output_padding,
                                          needs=("weight", "bias"), **opts)
    if pass_name == "forward":
        return lambda: conv(x, w, b, **opts)
    if pass_name == "grad_input":
        conv_input = getattr(fastconv, f"conv{nd}d_input")
        return lambda: conv_input(x.shape, w, g, **opts)
    backward = getattr(fastconv, f"conv{nd}d_backward")
    return lambda: backward(x, w, g, needs=("weight", "bias"), **opts)


def _torch_call(case: Case, pass_name: str, a: Mapping[str, np.ndarray]
                ) -> Callable[[], Any]:
    """The PyTorch call (channels-first tensors sharing the NumPy data) for the pass."""
    import torch

    functional = torch.nn.functional
    nd = case.ndim
    xt, wt, bt, gt = (torch.from_numpy(a[k]) for k in ("x", "weight", "bias", "grad_output"))
    stride, padding, dilation = [case.stride] * nd, [case.padding] * nd, [case.dilation] * nd
    output_padding = [case.output_padding] * nd
    if pass_name == "forward":
        if case.transposed:
            transpose = getattr(functional, f"conv_transpose{nd}d")
            return lambda: transpose(xt, wt, bt, case.stride, case.padding,
                                     case.output_padding, case.groups, case.dilation)
        conv = getattr(functional, f"conv{nd}d")
        return lambda: conv(xt, wt, bt, case.stride, case.padding, case.dilation, case.groups)
    backward = torch.ops.aten.convolution_backward
    if pass_name == "grad_input":
        mask, bias_sizes = [True, False, False], None
    else:
        mask, bias_sizes = [False, True, True], [case.out_channels]
    return lambda: backward(gt, xt, wt, bias_sizes, stride, padding, dilation,
                            case.transposed, output_padding, case.groups, mask)


def peer_applies(peer: str, case: Case) -> bool:
    """Whether ``peer`` computes the layer ``case`` itself.

    Parameters
    ----------
    peer : str
        One of :data:`PEERS`.
    case : Case

    Returns
    -------
    bool
        PyTorch and the naive NumPy peer compute every case; SciPy only a single-channel,
        single-image convolution with stride 1, no dilation, an odd kernel and 'same'
        zero padding (``scipy.ndimage.correlate``/``convolve``, ``scipy.signal.correlate``).
    """
    if peer != "scipy":
        return True
    return (case.batch == 1 and case.in_channels == 1 and case.out_channels == 1
            and not case.transposed and case.stride == 1 and case.dilation == 1
            and case.groups == 1 and all(k % 2 == 1 for k in case.kernel)
            and all(case.padding == k // 2 for k in case.kernel))


def _scipy_call(case: Case, pass_name: str, a: Mapping[str, np.ndarray]
                ) -> Callable[[], Any]:
    """The SciPy call for the pass (``ndimage.correlate``/``convolve``, ``signal.correlate``)."""
    from scipy import ndimage, signal

    x, w, g = a["x"][0, 0], a["weight"][0, 0], a["grad_output"][0, 0]
    bias = a["bias"][0]
    if pass_name == "forward":
        return lambda: ndimage.correlate(x, w, mode="constant") + bias
    if pass_name == "grad_input":
        return lambda: ndimage.convolve(g, w, mode="constant")
    pads = [(k // 2, k // 2) for k in case.kernel]
    return lambda: (signal.correlate(np.pad(x, pads), g, mode="valid"), g.sum())


def _numpy_call(case: Case, pass_name: str, a: Mapping[str, np.ndarray]
                ) -> Callable[[], Any]:
    """The naive NumPy call (:func:`naive_conv` and its gradients) for the pass."""
    x, w, b, g = a["x"], a["weight"], a["bias"], a["grad_output"]
    opts = {"stride": case.stride, "padding": case.padding, "dilation": case.dilation,
            "groups": case.groups}
    sum_axes = (0, *range(2, 2 + case.ndim))
    if case.transposed:
        if pass_name == "forward":
            return lambda: naive_conv_input(g.shape, w, x, **opts) + b.reshape(
                -1, *(1,) * case.ndim)
        if pass_name == "grad_input":
            return lambda: naive_conv(g, w, **opts)
        return lambda: (naive_conv_weight(g, w.shape, x, **opts), g.sum(axis=sum_axes))
    if pass_name == "forward":
        return lambda: naive_conv(x, w, b, **opts)
    if pass_name == "grad_input":
        return lambda: naive_conv_input(x.shape, w, g, **opts)
    return lambda: (naive_conv_weight(x, w.shape, g, **opts), g.sum(axis=sum_axes))


def make_problem(case: Case, pass_name: str, dtype: Any = np.float32,
                 peers: Sequence[str] = (), seed: int = 0) -> Problem:
    """Build the operands of one case and pass, and the calls that compute it.

    Parameters
    ----------
    case : Case
    pass_name : str
        One of :data:`PASSES`.
    dtype : dtype-like
        ``float32`` or ``float64``.
    peers : sequence of str
        Peers to build calls for (subset of :data:`PEERS`); a peer that is not installed,
        or does not compute this layer, is left out of :attr:`Problem.peers`. Building a
        PyTorch call sets PyTorch's thread count to Numba's.
    seed : int
        Seed of the random operands (standard normal).

    Returns
    -------
    Problem

    Raises
    ------
    ValueError
        For an unknown pass, peer or dtype.
    """
    if pass_name not in PASSES:
        raise ValueError(f"unknown pass {pass_name!r}; the passes are: {', '.join(PASSES)}")
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer {unknown[0]!r}; the peers are: {', '.join(PEERS)}")
    dtype = np.dtype(dtype)
    if dtype not in _TOLERANCE:
        raise ValueError(f"dtype={dtype} is not benchmarked; choose float32 or float64")
    rng = np.random.default_rng(seed)
    bias_size = case.out_channels
    x = rng.standard_normal((case.batch, case.in_channels, *case.spatial), dtype=dtype)
    weight = rng.standard_normal(case.weight_shape, dtype=dtype)
    bias = rng.standard_normal(bias_size, dtype=dtype)
    grad_output = rng.standard_normal((case.batch, case.out_channels, *case.output_spatial),
                                      dtype=dtype)
    arrays = {"x": x, "weight": weight, "bias": bias, "grad_output": grad_output}
    problem = Problem(case, pass_name, dtype, case.flops,
                      _fastconv_calls(case, pass_name, arrays), arrays=arrays)
    found = available_peers() if peers else {}
    builders = {"torch": _torch_call, "scipy": _scipy_call, "numpy": _numpy_call}
    for peer in peers:
        if peer not in found or not peer_applies(peer, case):
            continue
        if peer == "torch":
            set_threads(None)
        problem.peers[peer] = builders[peer](case, pass_name, arrays)
    return problem


# ------------------------------------------------------------------------------ timing
def _flat(result: Any) -> np.ndarray:
    """One float64 vector of every array in ``result`` (tensors converted, None skipped)."""
    parts = result if isinstance(result, tuple | list) else (result,)
    arrays = [np.asarray(p.numpy() if hasattr(p, "numpy") else p, dtype=np.float64).ravel()
              for p in parts if p is not None]
    return np.concatenate(arrays) if arrays else np.zeros(0)


def relative_error(result: Any, reference: Any) -> float:
    """``max|result - reference| / max|reference|`` over all arrays of two results.

    Parameters
    ----------
    result, reference : ndarray, tensor or tuple of them
        Results of two implementations of the same pass (``None`` entries are skipped).

    Returns
    -------
    float
        ``inf`` if the sizes differ; 0 for two empty results.
    """
    a, b = _flat(result), _flat(reference)
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(b))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b))) / scale


def _time_calls(function: Callable[[], Any], number: int) -> float:
    """Seconds per call of ``function``, averaged over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number


def interleaved_best(functions: Mapping[str, Callable[[], Any]], rounds: int = 5,
                     min_sample: float = 0.02, max_seconds: float = math.inf,
                     min_rounds: int = 2, warm: bool = True, pause: float = 0.02,
                     settle: int = 1) -> tuple[dict[str, float], dict[str, Any]]:
    """Time several functions in turns (A, B, C, A, B, C, ...) and keep each one's best.

    Parameters
    ----------
    functions : mapping of str to callable
        The calls to time (no arguments), in the order they run in each round.
    rounds : int
        Number of rounds; each round times every function once.
    min_sample : float
        Minimum seconds of one sample: a fast call is repeated back-to-back that many times
        per sample (calibrated on a warm-up call) and the sample is divided by the count.
    max_seconds : float
        Stop after the round in which this much time has been spent (not before
        ``min_rounds`` rounds).
    min_rounds : int
        Rounds always run.
    warm : bool
        Call each function twice before timing (JIT compile, caches, calibration).
    pause : float
        Seconds to sleep before each sample when more than one function is timed, so that
        the worker threads of the previous library (OpenMP, BLAS) stop spinning and do not
        steal cores from the next one. PyTorch's OpenMP workers spin for about 10 ms after
        its call (measured here: the second and third fastconv calls after a PyTorch call
        ran 30% and 2% slower with no pause; after 5 ms they ran as fast as alone).
    settle : int
        Untimed calls of a function right before each of its samples when more than one
        function is timed. A call that directly follows another library's is slower, for
        either library (measured here: 16-37% for fastconv after PyTorch, even after a
        50 ms pause), and a program calls one library many times in a row, so each
        sample is timed the way such a program runs.

    Returns
    -------
    best : dict of str to float
        Best seconds per call of each function.
    results : dict of str to object
        What each function returned on its warm-up call (for cross-checking results).

    Notes
    -----
    Interleaving makes a slow phase of a shared, noisy machine hit every function alike,
    so the ratio of two best times holds even when the absolute times drift.
    """
    results: dict[str, Any] = {}
    number: dict[str, int] = {}
    for name, function in functions.items():
        if warm:
            results[name] = function()
        start = time.perf_counter()
        result = function()
        elapsed = time.perf_counter() - start
        results.setdefault(name, result)
        number[name] = max(1, math.ceil(min_sample / max(elapsed, 1e-9)))
    best = dict.fromkeys(functions, math.inf)
    start = time.perf_counter()
    for done in range(1, rounds + 1):
        for name, function in functions.items():
            if len(functions) > 1:
                if pause > 0:
                    time.sleep(pause)
                for _ in range(settle):
                    function()
            best[name] = min(best[name], _time_calls(function, number[name]))
        if done >= min_rounds and time.perf_counter() - start > max_seconds:
            break
    return best, results


# ---------------------------------------------------------------------------- FMA probe
def _host_vector_bits() -> int:
    """Width of the host's widest float vector registers in bits (512, 256 or 128)."""
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
    except Exception:  # an unknown host: assume the baseline 128-bit vectors
        return 128
    if features.get("avx512f"):
        return 512
    if features.get("avx"):
        return 256
    return 128


_VECTOR_BITS = _host_vector_bits()
_CHAINS = 12  # independent FMA chains per thread: more than FMA latency x throughput


class _ProbeVector(types.Type):
    """Numba type of a native LLVM float vector (``<16 x float>`` on AVX-512)."""

    def __init__(self, dtype: types.Float) -> None:
        self.dtype = dtype
        self.lanes = _VECTOR_BITS // dtype.bitwidth
        super().__init__(name=f"fastconv_bench.ProbeVector({dtype}x{self.lanes})")


@register_model(_ProbeVector)
class _ProbeVectorModel(models.PrimitiveModel):
    """Data model of :class:`_ProbeVector`: an LLVM vector value, kept in a register."""

    def __init__(self, dmm, fe_type) -> None:
        element = ir.FloatType() if fe_type.dtype.bitwidth == 32 else ir.DoubleType()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


@intrinsic
def _splat(typingctx, value):
    """A vector with every lane equal to the float scalar ``value``."""
    if not isinstance(value, types.Float):
        return None
    vector = _ProbeVector(value)

    def codegen(context, builder, signature, args):
        ltype = context.get_value_type(vector)
        undef = ir.Constant(ltype, ir.Undefined)
        first = builder.insert_element(undef, args[0], ir.Constant(ir.IntType(32), 0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), vector.lanes), [0] * vector.lanes)
        return builder.shuffle_vector(first, undef, zeros)

    return vector(value), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """Lane-wise fused ``a * b + c`` (the ``llvm.fma`` intrinsic on vectors)."""
    if not (isinstance(a, _ProbeVector) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ltype = args[0].type
        name = f"llvm.fma.v{a.lanes}f{a.dtype.bitwidth}"
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ltype, [ltype] * 3), name)
        return builder.call(function, list(args))

    return a(a, b, c), codegen


@intrinsic
def _lane_sum(typingctx, vector):
    """Sum of the lanes of ``vector`` (in lane order)."""
    if not isinstance(vector, _ProbeVector):
        return None

    def codegen(context, builder, signature, args):
        total = builder.extract_element(args[0], ir.Constant(ir.IntType(32), 0))
        for lane in range(1, vector.lanes):
            item = builder.extract_element(args[0], ir.Constant(ir.IntType(32), lane))
            total = builder.fadd(total, item)
        return total

    return vector.dtype(vector), codegen


@njit(parallel=True, fastmath=True)
def _fma_probe(iterations, seeds):
    """Run 12 independent vector FMA chains per row of ``seeds``, one row per thread.

    ``seeds[t, :12]`` start the chains of thread ``t``; every step is ``a = a * m + c``
    with ``m = seeds[t, 12]``, ``c = seeds[t, 13]``. The accumulators are vector locals,
    so LLVM keeps them in registers and the loop is pure FMA throughput.
    """
    threads = seeds.shape[0]
    out = np.empty(threads, seeds.dtype)
    for t in prange(threads):
        m = _splat(seeds[t, 12])
        c = _splat(seeds[t, 13])
        a0, a1, a2 = _splat(seeds[t, 0]), _splat(seeds[t, 1]), _splat(seeds[t, 2])
        a3, a4, a5 = _splat(seeds[t, 3]), _splat(seeds[t, 4]), _splat(seeds[t, 5])
        a6, a7, a8 = _splat(seeds[t, 6]), _splat(seeds[t, 7]), _splat(seeds[t, 8])
        a9, a10, a11 = _splat(seeds[t, 9]), _splat(seeds[t, 10]), _splat(seeds[t, 11])
        for _ in range(iterations):
            a0, a1, a2 = _fma(a0, m, c), _fma(a1, m, c), _fma(a2, m, c)
            a3, a4, a5 = _fma(a3, m, c), _fma(a4, m, c), _fma(a5, m, c)
            a6, a7, a8 = _fma(a6, m, c), _fma(a7, m, c), _fma(a8, m, c)
            a9, a10, a11 = _fma(a9, m, c), _fma(a10, m, c), _fma(a11, m, c)
        out[t] = (_lane_sum(a0) + _lane_sum(a1) + _lane_sum(a2) + _lane_sum(a3)
                  + _lane_sum(a4) + _lane_sum(a5) + _lane_sum(a6) + _lane_sum(a7)
                  + _lane_sum(a8) + _lane_sum(a9) + _lane_sum(a10) + _lane_sum(a11))
    return out


_PEAKS: dict[tuple[int, str], float] = {}


def _probe_seconds(iterations: int, seeds: np.ndarray) -> float:
    """Seconds of one :func:`_fma_probe` call."""
    start = time.perf_counter()
    _fma_probe(iterations, seeds)
    return time.perf_counter() - start


def machine_peak(threads: int | None = None, dtype: Any = np.float32, repeats: int = 5,
                 sample: float = 0.03, again: bool = False) -> float:
    """Measure this machine's floating-point peak in GFLOP/s with a short FMA probe.

    Parameters
    ----------
    threads : int, optional
        Threads to measure on (default: Numba's current count). Numba's count is restored.
    dtype : dtype-like
        ``float32`` or ``float64``.
    repeats : int
        Samples; the best is kept.
    sample : float
        Approximate seconds per sample.
    again : bool
        Probe again even if a peak is cached, and keep the higher of the two.

    Returns
    -------
    float
        GFLOP/s (2 FLOPs per lane of each fused multiply-add). Cached per thread count and
        dtype for the life of the process: the highest probe so far.

    Notes
    -----
    Every thread runs 12 independent chains of vector FMAs on register-resident
    accumulators as wide as the host's vector registers (``<16 x float>`` with AVX-512), so
    the loop is bound only by FMA throughput. Takes about 0.2 s (plus ~1 s to compile once
    per process).
    """
    dtype = np.dtype(dtype)
    previous = numba.get_num_threads()
    threads = set_threads(threads)
    key = (threads, dtype.name)
    try:
        if again or key not in _PEAKS:
            seeds = np.empty((threads, _CHAINS + 2), dtype)
            seeds[:, :_CHAINS] = 1.0 + np.arange(_CHAINS) / 16.0
            seeds[:, _CHAINS] = 1.0 - 2.0**-10  # converges to c / (1 - m): no overflow
            seeds[:, _CHAINS + 1] = 2.0**-12
            lanes = _VECTOR_BITS // (8 * dtype.itemsize)
            _fma_probe(10, seeds)
            iterations = 1 << 10
            while True:  # grow until one call takes `sample` (thread wake-up is then noise)
                elapsed = _probe_seconds(iterations, seeds)
                if elapsed >= sample or iterations >= 1 << 40:
                    break
                iterations *= 2 if elapsed > sample / 8 else 8
            best = min(_probe_seconds(iterations, seeds) for _ in range(repeats))
            flops = 2.0 * lanes * _CHAINS * iterations * threads
            _PEAKS[key] = max(_PEAKS.get(key, 0.0), flops / best / 1e9)
        return _PEAKS[key]
    finally:
        set_threads(previous)


# ------------------------------------------------------------------------------ runner
@dataclass
class Measurement:
    """Result of one case and pass: best seconds per call of fastconv and of each peer.

    Attributes
    ----------
    case : Case
    pass_name : str
    dtype : str
    threads : int
    flops : int
    seconds : dict of str to float
        ``"fastconv"`` and every peer that ran.
    errors : dict of str to float
        Relative difference of each peer's result from fastconv's (:func:`relative_error`).
    peak : float
        Measured machine peak (GFLOP/s) for the thread count and dtype.
    """

    case: Case
    pass_name: str
    dtype: str
    threads: int
    flops: int
    seconds: dict[str, float]
    errors: dict[str, float]
    peak: float

    def gflops(self, name: str = "fastconv") -> float:
        """GFLOP/s of ``name`` (``"fastconv"`` or a peer), NaN if it did not run."""
        seconds = self.seconds.get(name)
        return self.flops / seconds / 1e9 if seconds else math.nan

    def speedup(self, peer: str) -> float:
        """Peer time / fastconv time (above 1: fastconv is faster); NaN if it did not run."""
        if peer not in self.seconds:
            return math.nan
        return self.seconds[peer] / self.seconds["fastconv"]

    def agrees(self, peer: str) -> bool:
        """Whether ``peer``'s result matched fastconv's to the dtype's tolerance."""
        return self.errors.get(peer, 0.0) <= _TOLERANCE[np.dtype(self.dtype)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable record of the measurement."""
        peers = [p for p in self.seconds if p != "fastconv"]
        return {
            "case": self.case.name, "description": self.case.description,
            "pass": self.pass_name, "dtype": self.dtype, "threads": self.threads,
            "flops": self.flops, "seconds": self.seconds,
            "gflops": {name: self.gflops(name) for name in self.seconds},
            "speedup": {p: self.speedup(p) for p in peers},
            "relative_error": self.errors,
            "peak_gflops": self.peak, "peak_fraction": self.gflops() / self.peak,
            "layer": dataclasses.asdict(self.case),
        }


def run(cases: Sequence[Case], passes: Sequence[str] = PASSES, dtype: Any = np.float32,
        threads: int | None = None, peers: Sequence[str] = PEERS, quick: bool = False,
        progress: Callable[[int, int, str], None] | None = None) -> list[Measurement]:
    """Measure fastconv and its peers on every case and pass.

    Parameters
    ----------
    cases : sequence of Case
    passes : sequence of str
        Subset of :data:`PASSES`.
    dtype : dtype-like
        ``float32`` or ``float64``.
    threads : int, optional
        Thread count for fastconv and PyTorch (default: Numba's).
    peers : sequence of str
        Peers to compare with (those not installed are skipped).
    quick : bool
        Best of 3 rounds and at most ~1 s of timing per problem, instead of best of 7 and ~4 s.
    progress : callable, optional
        Called as ``progress(done, total, label)`` before each problem and at the end.

    Returns
    -------
    list of Measurement
    """
    threads = set_threads(threads)
    dtype = np.dtype(dtype)
    machine_peak(threads, dtype)
    todo = [(case, p) for case in cases for p in passes]
    rounds, budget = (3, 1.0) if quick else (7, 4.0)
    measurements = []
    for done, (case, pass_name) in enumerate(todo):
        if progress is not None:
            progress(done, len(todo), f"{case.name} {pass_name}")
        problem = make_problem(case, pass_name, dtype, peers)
        functions = {"fastconv": problem.ours, **problem.peers}
        best, results = interleaved_best(functions, rounds=rounds, max_seconds=budget,
                                         min_sample=0.01 if quick else 0.03)
        errors = {p: relative_error(results["fastconv"], results[p]) for p in problem.peers}
        measurements.append(Measurement(case, pass_name, dtype.name, threads, problem.flops,
                                        best, errors, math.nan))
        del problem, functions, results
        # the machine's speed swings by up to 2x from minute to minute (here, the two
        # virtual cores at times share one core's FMA units): probe again after each
        # problem, and hold every problem to the highest peak seen
        machine_peak(threads, dtype, repeats=2, sample=0.01, again=True)
    peak = machine_peak(threads, dtype)
    for measurement in measurements:
        measurement.peak = peak
    if progress is not None:
        progress(len(todo), len(todo), "done")
    return measurements


# --------------------------------------------------------------------------------- CLI
def _format_number(value: float) -> str:
    """Three significant digits, ``-`` for NaN."""
    if math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _format_seconds(seconds: float) -> str:
    """A duration with a unit (us, ms or s), three significant digits."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale or unit == "us":
            return f"{_format_number(seconds / scale)} {unit}"
    return "-"


def format_table(measurements: Sequence[Measurement], peers: Sequence[str]) -> str:
    """The results as a Markdown table, one row per case and pass.

    Parameters
    ----------
    measurements : sequence of Measurement
    peers : sequence of str
        Peer columns to show (in this order).

    Returns
    -------
    str
        Columns: case, pass, fastconv time per call, fastconv GFLOP/s, each peer's GFLOP/s,
        fastconv's speedup over each peer (``x``; a ``!`` marks a peer whose result did not
        match), fraction of the measured machine peak.
    """
    header = (["case", "pass", "fastconv time", "fastconv GFLOP/s"]
              + [f"{p} GFLOP/s" for p in peers] + [f"vs {p}" for p in peers] + ["% of peak"])
    rows = []
    for m in measurements:
        speedups = []
        for p in peers:
            text = _format_number(m.speedup(p))
            speedups.append(text if text == "-" else f"{text}x" + ("" if m.agrees(p) else "!"))
        rows.append([m.case.name, m.pass_name, _format_seconds(m.seconds["fastconv"]),
                     _format_number(m.gflops())]
                    + [_format_number(m.gflops(p)) for p in peers] + speedups
                    + [f"{100 * m.gflops() / m.peak:.1f}%"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i < 2 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ("-" if i < 2 else ":")
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def plot(measurements: Sequence[Measurement], peers: Sequence[str], path: str) -> None:
    """Draw a bar chart of GFLOP/s per case and pass (fastconv beside each peer).

    Parameters
    ----------
    measurements : sequence of Measurement
    peers : sequence of str
    path : str
        Image file to write (format from the extension, e.g. ``.png``).

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'fastconv[bench]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("--plot needs matplotlib: pip install matplotlib "
                          "(or pip install 'fastconv[bench]')") from error
    names = ["fastconv", *peers]
    passes = [p for p in PASSES if any(m.pass_name == p for m in measurements)]
    cases = list(dict.fromkeys(m.case.name for m in measurements))
    found = {(m.case.name, m.pass_name): m for m in measurements}
    peak = measurements[0].peak if measurements else math.nan
    height = 0.8 / len(names)
    figure, panels = plt.subplots(1, max(len(passes), 1), sharex=True, sharey=True,
                                  squeeze=False,
                                  figsize=(4.0 * max(len(passes), 1) + 1.5,
                                           1.5 + 0.12 * len(cases) * len(names)))
    for axes, pass_name in zip(panels[0], passes):
        for i, name in enumerate(names):
            positions = [j + (i - (len(names) - 1) / 2) * height for j in range(len(cases))]
            values = [found[c, pass_name].gflops(name) if (c, pass_name) in found else math.nan
                      for c in cases]
            axes.barh(positions, [0 if math.isnan(v) else v for v in values], height,
                      label=name, color=f"C{i}")
        axes.axvline(peak, color="black", linestyle="--", linewidth=1,
                     label=f"machine peak ({peak:.0f} GFLOP/s)")
        axes.set_xscale("log")
        axes.set_title(pass_name)
        axes.set_xlabel("GFLOP/s (log scale)")
        axes.grid(axis="x", which="major", linewidth=0.3)
    panels[0][0].set_yticks(range(len(cases)), cases, fontsize=8)
    panels[0][0].invert_yaxis()
    panels[0][-1].legend(fontsize=7, loc="lower right")
    if measurements:
        m = measurements[0]
        figure.suptitle(f"fastconv {fastconv.__version__} beside its peers ({m.dtype}, "
                        f"{m.threads} threads; higher is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _progress_printer(stream: Any) -> Callable[[int, int, str], None]:
    """A progress callback: a redrawn bar on a terminal, one line per step otherwise."""
    tty = hasattr(stream, "isatty") and stream.isatty()

    def show(done: int, total: int, label: str) -> None:
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        text = f"[{bar}] {done}/{total} {label}"
        if tty:
            stream.write("\r" + text.ljust(78)[:78] + ("\n" if done == total else ""))
        elif done < total:
            stream.write(f"[{done + 1}/{total}] {label}\n")
        stream.flush()

    return show


def _parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """Split a comma-separated option value and check every item is allowed."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    for item in items:
        if item not in allowed:
            raise ValueError(f"unknown {what} {item!r}; choose from: {', '.join(allowed)}")
    return items


def _parser() -> argparse.ArgumentParser:
    """The ``fastconv bench`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="fastconv bench",
        description="Time fastconv beside the installed peers (PyTorch, SciPy, naive NumPy) "
                    "on the benchmark case list and print GFLOP/s, speedups and the fraction "
                    "of this machine's measured peak.")
    parser.add_argument("--cases", default=None,
                        help="comma-separated case names (default: all; see --list)")
    parser.add_argument("--passes", default=",".join(PASSES),
                        help="comma-separated passes (default: %(default)s)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="comma-separated peers to compare with (default: %(default)s)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--threads", type=int, default=None,
                        help=f"threads for fastconv and PyTorch "
                             f"(default: {numba.config.NUMBA_NUM_THREADS})")
    parser.add_argument("--quick", action="store_true",
                        help="best of 3 short rounds instead of 7 (about 3x faster)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="draw a bar chart (needs matplotlib)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``fastconv bench``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments after ``bench`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 for a bad argument, 1 if ``--plot`` cannot be drawn.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for case in CASES:
            print(f"{case.name:20} {case.description}")
        return 0
    try:
        names = (_parse_list(args.cases, [c.name for c in CASES], "case")
                 if args.cases else [c.name for c in CASES])
        passes = _parse_list(args.passes, PASSES, "pass")
        wanted = _parse_list(args.peers, PEERS, "peer")
        threads = set_threads(args.threads)
    except ValueError as error:
        parser.error(str(error))
    if args.plot:
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            print("fastconv bench: --plot needs matplotlib, which is not installed: "
                  "pip install matplotlib (or pip install 'fastconv[bench]')", file=sys.stderr)
            return 1
    found = available_peers()
    peers = [p for p in wanted if p in found]
    missing = [p for p in PEERS if p not in found]
    print(f"fastconv {fastconv.__version__}, numba {numba.__version__}, numpy {np.__version__},"
          f" Python {platform.python_version()}, {platform.machine()}")
    print("peers found: " + (", ".join(f"{p} {found[p]}" for p in PEERS if p in found))
          + (f"; not installed: {', '.join(missing)}" if missing else ""))
    tty = sys.stdout.isatty()
    if tty:
        print("machine peak: measuring...", end="", flush=True)
    peak = machine_peak(threads, args.dtype)
    on = f"{threads} thread{'s' if threads != 1 else ''}"
    print(("\r" if tty else "") + f"machine peak (FMA probe, {on}, {args.dtype}): "
          f"{peak:.0f} GFLOP/s")
    notes = []
    if "scipy" in peers:
        notes.append("scipy runs only where it computes the same layer (one channel, one image)")
    if "numpy" in peers:
        notes.append("numpy = naive NumPy (one matmul per kernel tap, BLAS threads as set)")
    if "torch" in peers:
        notes.append("torch = torch.nn.functional / aten.convolution_backward, channels-first")
    for note in notes:
        print(f"  {note}")
    progress = None if args.no_progress else _progress_printer(sys.stderr)
    started = time.perf_counter()
    measurements = run([case_by_name(n) for n in names], passes, args.dtype, threads, peers,
                       args.quick, progress)
    print()
    peak = machine_peak(threads, args.dtype)
    print(f"{args.dtype}, {on}; GFLOP/s (higher is better); 'vs peer' = peer "
          f"time / fastconv time; best of {3 if args.quick else 7} interleaved rounds; "
          f"GFLOP/s count the direct convolution's multiply-adds, whatever the algorithm "
          f"(the Winograd kernel does 2.25x fewer); % of peak: of the highest FMA probe, "
          f"before or after any problem ({peak:.0f} GFLOP/s)")
    print(format_table(measurements, peers))
    if any(not m.agrees(p) for m in measurements for p in peers if p in m.seconds):
        print("! = that peer's result differs from fastconv's beyond the tolerance")
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        record = {"fastconv": fastconv.__version__, "numba": numba.__version__,
                  "numpy": np.__version__, "python": platform.python_version(),
                  "machine": platform.machine(), "processor": platform.processor(),
                  "threads": threads, "dtype": args.dtype, "peak_gflops": peak,
                  "peers": found, "results": [m.to_json() for m in measurements]}
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, default=float)
        print(f"wrote {args.json}")
    if args.plot:
        plot(measurements, peers, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
