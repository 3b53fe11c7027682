"""Overloads that let users' own Numba-compiled code call fastconv's public functions.

Importing this module registers a :func:`numba.extending.overload` for every public
function (``conv{d}d``, ``conv{d}d_input``, ``conv{d}d_weight``, ``conv{d}d_backward``,
``conv_transpose{d}d``, ``conv_transpose{d}d_backward``, ``conv_output_shape``), so that
inside ``@njit`` and ``@njit(parallel=True)`` functions::

    fastconv.conv2d(x, w, b, stride=2, padding="same", out=buf)

runs with the keywords, defaults, results and errors it has from Python.

Three stages
------------
Typing (compile time, Python)
    The typing function of each overload checks what Numba knows before running: array
    arguments must be NumPy arrays (lists and other array-likes are not converted in
    compiled code) of real dtype with the right number of dimensions; ints must be ints,
    strings strings, flags booleans; ``out`` must have the result's dtype and be writeable.
    A violation is a Numba ``TypingError`` naming the function, the parameter, the type
    received and what is allowed.
Validation (run time, compiled)
    Every check on values (sizes, pads, groups, channel counts, shapes of ``bias``,
    ``grad_output`` and ``out``, padding strings and modes, memory) runs in the compiled
    code as plain comparisons. When one fails, the compiled code calls the public Python
    function with the same arguments in ``numba.objmode``; its validation then raises the
    very exception (same type, same message) a call from Python raises. Building messages
    in compiled code would compile Numba's string machinery into every caller.
Computation (run time, compiled)
    The steps of :mod:`fastconv.convolution`: the plan functions of :mod:`fastconv._plan`
    (``register_jitable``), free strided ``(N, D0, D1, D2, C)`` views made with
    ``np.lib.stride_tricks.as_strided``, the same weight packing, tiling parameters and
    kernels, and the weight-gradient reductions in NumPy's summation order, so results are
    bitwise equal to the Python level's gather kernels.

Compile time
------------
Numba links a copy of every function a compiled function calls into it, and optimises and
generates machine code for that copy again. A few fixed-signature "cores" (forward,
adjoint and weight-gradient passes) and the kernels are therefore called through a table
of addresses instead (see "Calls by address" below): each call site compiles only its thin
argument handling (about a second), and calls the very machine code the Python level runs.
Only the string-matching helpers are cached on disk: Numba's cache does not track calls
into other modules, so cached code calling the plan functions could go stale.

What differs from Python calls
------------------------------
- Array-likes are not converted: pass arrays.
- Type-level mistakes (a complex or wrong-``ndim`` array, a list for ``stride``, a read-only
  or wrong-dtype ``out``) fail at compile time with a ``TypingError`` instead of raising
  ``TypeError``/``ValueError`` when called.
- ``needs`` of the backward functions is read at run time unless it is left out or is a
  constant the compiler sees (an empty tuple); the three results are then ``Optional``
  arrays, ``None`` for what ``needs`` leaves out.
- ``conv_output_shape`` also accepts ``transposed`` and ``output_padding`` by position.
- The forward and adjoint passes always use the gather kernel (``_kernels.gather_conv``).

Allocation
----------
With ``out=``, a call allocates nothing of the data's size: only the packed weights, a
bias vector, the (3, 9) geometry record, three capacities and the kernels' per-task
scratch.
"""

from __future__ import annotations

import ctypes
from collections import namedtuple

import llvmlite.binding as llvm_binding
import numpy as np
from llvmlite import ir as llvm_ir
from numba import from_dtype, njit, objmode, typeof, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload, register_jitable
from numba.np.numpy_support import as_dtype

from . import _args, _jit, _kernels, _plan, convolution, shapes
from ._plan import (
    ADJOINT,
    DILATION,
    GEOMETRY_FIELDS,
    IN_SIZE,
    MODE,
    OUT_SIZE,
    PAD_HIGH,
    PAD_LOW,
    PADDING_MODES,
    PADDING_STRINGS,
    STRIDE,
    TAPS,
)
from ._runtime import CACHE

__all__: list[str] = []

if list(_plan.MODE_CODES.items()) != [(mode, code) for code, mode in enumerate(PADDING_MODES)]:
    raise ImportError("fastconv._embed expects padding-mode codes 0..3 in PADDING_MODES order")

_MEMORY_LIMIT = _args._memory_limit()
_MODES_TEXT = ", ".join(repr(mode) for mode in PADDING_MODES)
_STRINGS_TEXT = ", ".join(repr(text) for text in PADDING_STRINGS)
_NEEDS = ("input", "weight", "bias")
_NEEDS_TEXT = ", ".join(repr(name) for name in _NEEDS)
_STRING_TYPES = (types.UnicodeType, types.StringLiteral)
_MISMATCH = ("fastconv: compiled validation refused arguments that the Python validation "
             "accepts; please report this bug")

# Padding given as explicit pairs, or one of the strings (codes 1..3, PADDING_STRINGS order).
_EXPLICIT, _VALID, _SAME, _FULL = 0, 1, 2, 3
_INVALID = -1

_Spec = namedtuple(
    "_Spec",
    ["ndim", "c_in", "c_out", "groups", "in_sizes", "kernel", "stride", "dilation",
     "pad_low", "pad_high", "out_sizes", "mode"],
)
"""A convolution in compiled code, as :class:`fastconv._args.ConvSpec`.

All fields are int64 or int64 3-tuples in the canonical order; missing leading dims (1-D and
2-D problems) hold unit values (sizes, kernel, stride and dilation 1, pads 0).
"""

_SPEC_TYPE = typeof(_Spec(*([1] * 4 + [(1, 1, 1)] * 7 + [0])))


def _cached(function):
    """A function compiled once per machine (Numba's disk cache); it must call no other module."""
    return njit(cache=CACHE, nogil=True)(function)


# =========================================================================== calls by address
# The kernels and the cores below are called through a process-wide table of addresses, a
# symbol registered when this module is imported, so compiled callers (also ones loaded from
# Numba's cache by a later process) find it. An empty entry is filled on first use, by
# loading the kernel the way the Python level does or compiling the core.
_DTYPES = (np.float32, np.float64)
(_GATHER, _WEIGHT_GRAD, _BIAS_GRAD, _FORWARD_CORE, _ADJOINT_CORE, _WEIGHT_CORE, _GATHER_TASK,
 _WEIGHT_GRAD_TASK) = range(8)
_TABLE_SYMBOL = "fastconv_embed_address_table_v2"
_TABLE_LENGTH = 8 * len(_DTYPES)


def _table_address() -> int:
    """Address of the table: registered once per process, never freed (code may hold it)."""
    address = llvm_binding.address_of_symbol(_TABLE_SYMBOL)
    if not address:  # the first import of this module in the process
        calloc = ctypes.pythonapi.PyMem_RawCalloc
        calloc.restype = ctypes.c_void_p
        calloc.argtypes = (ctypes.c_size_t, ctypes.c_size_t)
        address = calloc(_TABLE_LENGTH, ctypes.sizeof(ctypes.c_int64))
        if not address:  # pragma: no cover - out of memory at import
            raise MemoryError("fastconv: cannot allocate the compiled-code address table")
        llvm_binding.add_symbol(_TABLE_SYMBOL, address)
    return address


_TABLE = (ctypes.c_int64 * _TABLE_LENGTH).from_address(_table_address())


def _core_signature(core: int, dtype) -> tuple:
    """Argument types of a core: canonical 5-D views, and the spec."""
    item = from_dtype(np.dtype(dtype))
    read5 = types.Array(item, 5, "A", readonly=True, aligned=False)
    write5 = types.Array(item, 5, "A", aligned=False)
    if core == _WEIGHT_CORE:
        write1 = types.Array(item, 1, "A", aligned=False)
        return (read5, read5, _SPEC_TYPE, write5, write1, types.boolean, types.boolean)
    read1 = types.Array(item, 1, "A", readonly=True, aligned=False)
    return (read5, read5, read1, types.boolean, write5, _SPEC_TYPE)


def _signature_of(callee: int):
    """``dtype -> argument types`` of a kernel or core."""
    if callee == _GATHER:
        return _kernels.gather_signature
    if callee == _WEIGHT_GRAD:
        return _kernels.weight_grad_signature
    if callee == _BIAS_GRAD:
        return _kernels.bias_grad_signature
    if callee == _GATHER_TASK:
        return _kernels.gather_task_signature
    if callee == _WEIGHT_GRAD_TASK:
        return _kernels.weight_grad_task_signature
    return lambda dtype: _core_signature(callee, dtype)


def _load(slot: int) -> None:
    """Compile or load the function of table entry ``slot`` and record its address."""
    callee, dtype = divmod(slot, len(_DTYPES))
    dtype = np.dtype(_DTYPES[dtype])
    if callee == _GATHER_TASK:
        _TABLE[slot] = _kernels.gather_task_address(dtype)
        return
    if callee == _WEIGHT_GRAD_TASK:
        _TABLE[slot] = _kernels.weight_grad_task_address(dtype)
        return
    signature = _signature_of(callee)(dtype)
    if callee in (_GATHER, _WEIGHT_GRAD, _BIAS_GRAD):
        dispatcher = (_kernels.gather_conv, _kernels.weight_grad, _kernels.bias_grad)[callee]
        _jit.ensure_compiled(dispatcher, _signature_of(callee), dtype)
    else:
        dispatcher = _CORES[callee - _FORWARD_CORE]
        dispatcher.compile(signature)
    compiled = dispatcher.overloads[signature]
    _TABLE[slot] = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)


@intrinsic
def _table_entry(typingctx, slot):
    """Entry ``slot`` of the address table (0 while not loaded)."""
    def codegen(context, builder, signature, args):
        table = builder.module.globals.get(_TABLE_SYMBOL)
        if table is None:
            table = cgutils.add_global_variable(
                builder.module, llvm_ir.ArrayType(llvm_ir.IntType(64), _TABLE_LENGTH),
                _TABLE_SYMBOL)
        zero = llvm_ir.Constant(llvm_ir.IntType(32), 0)
        return builder.load(builder.gep(table, [zero, args[0]]))

    return types.int64(types.intp), codegen


@register_jitable
def _load_compiled(slot):
    with objmode():
        _load(slot)


@register_jitable
def _address(slot):
    """Address of table entry ``slot``, loading its function on first use."""
    address = _table_entry(slot)
    if address == 0:
        _load_compiled(slot)
        address = _table_entry(slot)
    return address


def _slot(callee, like):
    """Table entry of ``callee`` for the dtype of the array ``like`` (a constant)."""
    return callee * len(_DTYPES) + _DTYPES.index(like.dtype.type)


@overload(_slot)
def _slot_overload(callee, like):
    index = _DTYPES.index(as_dtype(like.dtype).type)
    return lambda callee, like: callee * len(_DTYPES) + index


def _caller(callee: int):
    """An intrinsic ``call(address, arguments)`` running ``callee`` at a table address.

    ``arguments`` must convert safely to the callee's types (:func:`fastconv._jit.caller`).
    """
    return _jit.caller(_signature_of(callee))


_call_gather = _caller(_GATHER)
_call_weight_grad = _caller(_WEIGHT_GRAD)
_call_bias_grad = _caller(_BIAS_GRAD)
_call_forward_core = _caller(_FORWARD_CORE)
_call_adjoint_core = _caller(_ADJOINT_CORE)
_call_weight_core = _caller(_WEIGHT_CORE)


# =========================================================================== typing time
def _omitted(ty) -> bool:
    """Whether an argument was left out (typing then sees its default, not a type)."""
    return isinstance(ty, types.Omitted) or not isinstance(ty, types.Type)


def _default(ty):
    """The default value of an omitted argument."""
    return ty.value if isinstance(ty, types.Omitted) else ty


def _is_none(ty) -> bool:
    """Whether an argument is None (given, or an omitted default of None)."""
    if _omitted(ty):
        return _default(ty) is None
    return isinstance(ty, types.NoneType)


def _is_int(ty) -> bool:
    return isinstance(ty, types.Integer)


def _is_int_tuple(ty) -> bool:
    return isinstance(ty, types.BaseTuple) and all(_is_int(t) for t in ty)


def _is_pair(ty) -> bool:
    return _is_int_tuple(ty) and len(ty) == 2


class _Typer:
    """Compile-time checks of one call of the public function ``name`` (``ndim`` dims)."""

    def __init__(self, name: str, ndim: int):
        self.name = name
        self.ndim = ndim

    def fail(self, message: str) -> None:
        """Raise the TypingError Numba reports for this call."""
        raise TypingError(f"fastconv.{self.name} in compiled code: {message}")

    def array(self, param: str, ty, ndims: tuple[int, ...], what: str) -> None:
        """An ndarray of real dtype with one of ``ndims`` dimensions (``what`` says which)."""
        if not isinstance(ty, types.Array):
            self.fail(
                f"{param} must be a NumPy array, got {ty} (lists, tuples and other "
                "array-likes are converted only when fastconv is called from Python; pass "
                "np.asarray(...) instead)"
            )
        if not isinstance(ty.dtype, (types.Boolean, types.Integer, types.Float)):
            hint = ""
            if isinstance(ty.dtype, types.Complex):
                hint = " (take the real part, or convolve real and imaginary parts separately)"
            self.fail(f"{param} has dtype {ty.dtype}; fastconv computes in float32 or float64 "
                      f"from real (bool, integer or floating) input{hint}")
        if ty.ndim not in ndims:
            self.fail(f"{param} must have {what} for a {self.ndim}-D convolution, got a "
                      f"{ty.ndim}-D array")

    def data(self, param: str, ty) -> None:
        """A data array: batched or unbatched."""
        d = self.ndim
        self.array(param, ty, (d + 1, d + 2),
                   f"{d + 2} dims (N, C, *spatial; or N, *spatial, C with channels_last=True) "
                   f"or {d + 1} (unbatched)")

    def weight(self, param: str, ty) -> None:
        d = self.ndim
        self.array(param, ty, (d + 2,),
                   f"{d + 2} dims (out_channels, in_channels/groups, *kernel)")

    def bias(self, ty) -> None:
        if not _is_none(ty):
            self.array("bias", ty, (1,), "1 dim (one value per output channel)")

    def shape(self, param: str, ty, lengths: tuple[int, ...]) -> None:
        """A tuple of ints of one of ``lengths`` (``input_shape``, ``weight_shape``)."""
        if not _is_int_tuple(ty):
            self.fail(f"{param} must be a tuple of ints, got {ty}")
        if len(ty) not in lengths:
            allowed = " or ".join(str(n) for n in lengths)
            self.fail(f"{param} must have {allowed} entries for a {self.ndim}-D convolution, "
                      f"got {len(ty)} ({ty})")

    def per_dim(self, param: str, ty) -> None:
        """An int or a tuple of ints (stride, dilation, output_padding, kernel_size)."""
        if not (_omitted(ty) or _is_int(ty) or _is_int_tuple(ty)):
            self.fail(f"{param} must be an int or a tuple of {self.ndim} ints, got {ty}")

    def integer(self, param: str, ty) -> None:
        if not (_omitted(ty) or _is_int(ty)):
            self.fail(f"{param} must be an int, got {ty}")

    def flag(self, param: str, ty) -> None:
        if not (_omitted(ty) or isinstance(ty, types.Boolean)):
            self.fail(f"{param} must be True or False, got {ty}")

    def padding(self, ty) -> None:
        if _omitted(ty) or _is_int(ty) or isinstance(ty, _STRING_TYPES):
            return
        if isinstance(ty, types.BaseTuple) and all(_is_int(t) or _is_pair(t) for t in ty):
            return
        d = self.ndim
        self.fail(f"padding must be an int >= 0, a tuple of {d} ints or of {d} (low, high) "
                  f"pairs, or one of {_STRINGS_TEXT}, got {ty}")

    def conv_options(self, stride, padding, dilation, groups, padding_mode, channels_last):
        """The options common to the forward and gradient functions."""
        self.per_dim("stride", stride)
        self.padding(padding)
        self.per_dim("dilation", dilation)
        self.integer("groups", groups)
        if not (_omitted(padding_mode) or isinstance(padding_mode, _STRING_TYPES)):
            self.fail(f"padding_mode must be one of {_MODES_TEXT}, got {padding_mode}")
        self.flag("channels_last", channels_last)

    def transpose_options(self, stride, padding, output_padding, groups, dilation,
                          channels_last):
        """The options of the transposed-convolution functions."""
        self.per_dim("stride", stride)
        self.padding(padding)
        self.per_dim("output_padding", output_padding)
        self.integer("groups", groups)
        self.per_dim("dilation", dilation)
        self.flag("channels_last", channels_last)

    def result_dtype(self, **arrays) -> type:
        """``np.result_type(*arrays, np.float32)``, which must be float32 or float64."""
        given = {param: as_dtype(ty.dtype) for param, ty in arrays.items()}
        dtype = np.result_type(*given.values(), np.float32)
        if dtype not in _args.SUPPORTED_DTYPES:
            described = ", ".join(f"{param}: {dt}" for param, dt in given.items())
            self.fail(f"the arguments' dtypes ({described}) promote to {dtype}; fastconv "
                      "computes in float32 or float64: convert with .astype(np.float64)")
        return dtype.type

    def out(self, ty, ndim: int, dtype: type) -> None:
        """``out``: None, or a writeable array with the result's dtype and dimensions."""
        if _is_none(ty):
            return
        if not isinstance(ty, types.Array):
            self.fail(f"out must be a numpy.ndarray or None, got {ty}")
        if ty.ndim != ndim:
            self.fail(f"out must have {ndim} dims like the result, got a {ty.ndim}-D array")
        if as_dtype(ty.dtype) != np.dtype(dtype):
            self.fail(f"out has dtype {ty.dtype} (expected {np.dtype(dtype)})")
        if not ty.mutable:
            self.fail("out has read-only memory (expected writeable)")

    def needs(self, ty) -> tuple[bool, bool, bool] | None:
        """The (input, weight, bias) flags when constant, or None when read at run time."""
        if _omitted(ty):
            values = _default(ty)
        elif isinstance(ty, types.StringLiteral):
            values = (ty.literal_value,)
        elif isinstance(ty, types.BaseTuple) and all(
            isinstance(t, types.StringLiteral) for t in ty
        ):
            values = tuple(t.literal_value for t in ty)
        elif isinstance(ty, types.UnicodeType) or (
            isinstance(ty, types.UniTuple) and isinstance(ty.dtype, types.UnicodeType)
        ):
            return None
        else:
            self.fail(f"needs must be a string or a tuple of strings among {_NEEDS_TEXT}, "
                      f"got {ty}")
        if isinstance(values, str):
            values = (values,)
        unknown = [value for value in values if value not in _NEEDS]
        if unknown:
            self.fail(f"needs must be a collection of {_NEEDS_TEXT}, got {tuple(values)!r}")
        return tuple(name in values for name in _NEEDS)


# =========================================================================== tuples
def _to3(values, fill):
    """A per-dimension tuple as an int64 3-tuple, left-padded with ``fill``."""
    return _plan.to_3d(tuple(values), fill)


_TO3 = (
    lambda values, fill: (fill, fill, np.int64(values[0])),
    lambda values, fill: (fill, np.int64(values[0]), np.int64(values[1])),
    lambda values, fill: (np.int64(values[0]), np.int64(values[1]), np.int64(values[2])),
)


@overload(_to3)
def _to3_overload(values, fill):
    if 1 <= len(values) <= 3:
        return _TO3[len(values) - 1]
    return lambda values, fill: (fill, fill, fill)  # a wrong length, refused by the caller


def _ints(values):
    """A tuple of ints as int64 (the shapes users give)."""
    return tuple(int(v) for v in values)


_INTS = (
    lambda values: (np.int64(values[0]), np.int64(values[1])),
    lambda values: (np.int64(values[0]), np.int64(values[1]), np.int64(values[2])),
    lambda values: (np.int64(values[0]), np.int64(values[1]), np.int64(values[2]),
                    np.int64(values[3])),
    lambda values: (np.int64(values[0]), np.int64(values[1]), np.int64(values[2]),
                    np.int64(values[3]), np.int64(values[4])),
)


@overload(_ints)
def _ints_overload(values):
    if 2 <= len(values) <= 5:
        return _INTS[len(values) - 2]
    return None


def _low(entry):
    """Low pad of one padding entry (an int, or a ``(low, high)`` pair)."""
    return entry if isinstance(entry, int) else entry[0]


def _high(entry):
    """High pad of one padding entry (an int, or a ``(low, high)`` pair)."""
    return entry if isinstance(entry, int) else entry[1]


@overload(_low)
def _low_overload(entry):
    if isinstance(entry, types.Integer):
        return lambda entry: np.int64(entry)
    return lambda entry: np.int64(entry[0])


@overload(_high)
def _high_overload(entry):
    if isinstance(entry, types.Integer):
        return lambda entry: np.int64(entry)
    return lambda entry: np.int64(entry[1])


def _pads3(value):
    """Low and high pads of a padding tuple, as two int64 3-tuples left-padded with 0."""
    return value


_PADS3 = (
    lambda value: ((np.int64(0), np.int64(0), _low(value[0])),
                   (np.int64(0), np.int64(0), _high(value[0]))),
    lambda value: ((np.int64(0), _low(value[0]), _low(value[1])),
                   (np.int64(0), _high(value[0]), _high(value[1]))),
    lambda value: ((_low(value[0]), _low(value[1]), _low(value[2])),
                   (_high(value[0]), _high(value[1]), _high(value[2]))),
)


@overload(_pads3)
def _pads3_overload(value):
    if 1 <= len(value) <= 3:
        return _PADS3[len(value) - 1]
    zeros = (np.int64(0),) * 3
    return lambda value: (zeros, zeros)  # a wrong length, refused by the caller


def _tail(values, like):
    """The last ``len(like)`` entries of the 3-tuple ``values``."""
    return tuple(values)[3 - len(like):]


_TAILS = (
    lambda values, like: (values[2],),
    lambda values, like: (values[1], values[2]),
    lambda values, like: (values[0], values[1], values[2]),
)


@overload(_tail)
def _tail_overload(values, like):
    return _TAILS[len(like) - 1]


def _full_shape(data_shape, weight_shape, channels_last, batch, channels, sizes):
    """Shape of an array batched like ``data_shape``, with ``channels`` and ``sizes``.

    There are ``len(weight_shape) - 2`` spatial dims; ``sizes`` is a 3-tuple.
    """
    return data_shape


@overload(_full_shape)
def _full_shape_overload(data_shape, weight_shape, channels_last, batch, channels, sizes):
    def batched(data_shape, weight_shape, channels_last, batch, channels, sizes):
        spatial = _tail(sizes, weight_shape[2:])
        if channels_last:
            return (batch,) + spatial + (channels,)
        return (batch, channels) + spatial

    def unbatched(data_shape, weight_shape, channels_last, batch, channels, sizes):
        spatial = _tail(sizes, weight_shape[2:])
        if channels_last:
            return spatial + (channels,)
        return (channels,) + spatial

    return batched if len(data_shape) == len(weight_shape) else unbatched


# =========================================================================== argument values
def _per_dim(value, ndim, minimum, fill):
    """An int or one int per dim as a 3-tuple, and whether it is valid (``int_tuple``)."""
    return _args.int_tuple("value", value, ndim, minimum)


@overload(_per_dim)
def _per_dim_overload(value, ndim, minimum, fill):
    if isinstance(value, types.Integer):
        def from_int(value, ndim, minimum, fill):
            v = np.int64(value)
            return (v if ndim >= 3 else fill, v if ndim >= 2 else fill, v), v >= minimum
        return from_int

    def from_tuple(value, ndim, minimum, fill):
        values = _to3(value, fill)
        valid = len(value) == ndim
        for v in values:
            valid = valid and v >= minimum
        return values, valid
    return from_tuple


@_cached
def _padding_code(value):
    """The code of a padding string, -1 if unknown."""
    if value == "valid":
        return _VALID
    if value == "same":
        return _SAME
    if value == "full":
        return _FULL
    return _INVALID


@_cached
def _mode_code(value):
    """The code of ``padding_mode`` in :data:`fastconv._plan.MODE_CODES`, -1 if unknown."""
    if value == "zeros":
        return 0
    if value == "reflect":
        return 1
    if value == "replicate":
        return 2
    if value == "circular":
        return 3
    return _INVALID


def _string_code(value, codes):
    """The code of a string in ``codes``; constant when the compiler knows the string."""
    return codes(value)


@overload(_string_code, prefer_literal=True)
def _string_code_overload(value, codes):
    if isinstance(value, types.StringLiteral):
        table = _PADDING_CODES if codes.dispatcher is _padding_code else _plan.MODE_CODES
        code = table.get(value.literal_value, _INVALID)
        return lambda value, codes: code
    return lambda value, codes: codes(value)


_PADDING_CODES = {"valid": _VALID, "same": _SAME, "full": _FULL}


def _padding(value, ndim):
    """``padding`` as (code, low pads, high pads, valid) (``_args.padding_spec``)."""
    return _args.padding_spec(value, ndim)


@overload(_padding)
def _padding_overload(value, ndim):
    zeros = (np.int64(0),) * 3
    if isinstance(value, _STRING_TYPES):
        def from_string(value, ndim):
            code = _string_code(value, _padding_code)
            return code, zeros, zeros, code != _INVALID
        return from_string
    if isinstance(value, types.Integer):
        def from_int(value, ndim):
            v = np.int64(value)
            pads = (v if ndim >= 3 else 0, v if ndim >= 2 else 0, v)
            return _EXPLICIT, pads, pads, v >= 0
        return from_int

    def from_tuple(value, ndim):
        lows, highs = _pads3(value)
        valid = len(value) == ndim
        for axis in range(3):
            valid = valid and lows[axis] >= 0 and highs[axis] >= 0
        return _EXPLICIT, lows, highs, valid
    return from_tuple


@register_jitable
def _need(name):
    """(input, weight, bias, valid) flags of one entry of ``needs``."""
    wants_input, wants_weight, wants_bias = name == "input", name == "weight", name == "bias"
    return wants_input, wants_weight, wants_bias, wants_input or wants_weight or wants_bias


@_cached
def _needs_of_string(value):
    """``needs`` given as one string: (input, weight, bias, valid) flags."""
    return _need(value)


@_cached
def _needs_of_tuple(value):
    """``needs`` given as a tuple of strings: (input, weight, bias, valid) flags."""
    wants_input = wants_weight = wants_bias = False
    valid = True
    for name in value:
        is_input, is_weight, is_bias, known = _need(name)
        wants_input = wants_input or is_input
        wants_weight = wants_weight or is_weight
        wants_bias = wants_bias or is_bias
        valid = valid and known
    return wants_input, wants_weight, wants_bias, valid


def _needs_flags(value):
    """``needs`` as (input, weight, bias, valid) flags (``_args.needs_spec``)."""
    return _args.needs_spec(value)


@overload(_needs_flags)
def _needs_flags_overload(value):
    if isinstance(value, _STRING_TYPES):
        return lambda value: _needs_of_string(value)
    return lambda value: _needs_of_tuple(value)


@register_jitable
def _shape_values(shape):
    """A user-given shape as int64, and whether no size is negative (``shape_spec``)."""
    values = _ints(shape)
    valid = True
    for v in values:
        valid = valid and v >= 0
    return values, valid


def _length(array):
    """``len(array)``, or -1 for None (the length of ``bias``)."""
    return -1 if array is None else len(array)


@overload(_length)
def _length_overload(array):
    if _is_none(array):
        return lambda array: -1
    return lambda array: array.shape[0]


def _out_ok(out, shape):
    """Whether ``out`` is None or C-contiguous with the result's shape."""
    return out is None or (out.shape == shape and out.flags.c_contiguous)


@overload(_out_ok)
def _out_ok_overload(out, shape):
    if _is_none(out):
        return lambda out, shape: True
    return lambda out, shape: out.shape == shape and out.flags.c_contiguous


# =========================================================================== refusals
# A failed check calls the public Python function with the same arguments: its validation
# raises the exception (type and message) a Python call raises.
_CONV = (None, convolution.conv1d, convolution.conv2d, convolution.conv3d)
_TRANSPOSE = (None, convolution.conv_transpose1d, convolution.conv_transpose2d,
              convolution.conv_transpose3d)
_INPUT = (None, convolution.conv1d_input, convolution.conv2d_input, convolution.conv3d_input)
_WEIGHT = (None, convolution.conv1d_weight, convolution.conv2d_weight,
           convolution.conv3d_weight)
_BACKWARD = (None, convolution.conv1d_backward, convolution.conv2d_backward,
             convolution.conv3d_backward)
_TRANSPOSE_BACKWARD = (None, convolution.conv_transpose1d_backward,
                       convolution.conv_transpose2d_backward,
                       convolution.conv_transpose3d_backward)


@register_jitable
def _refuse_conv(ndim, x, weight, bias, stride, padding, dilation, groups, padding_mode,
                 channels_last, out):
    with objmode():
        _CONV[ndim](x, weight, bias, stride, padding, dilation, groups, padding_mode,
                    channels_last, out)
    raise RuntimeError(_MISMATCH)


@register_jitable
def _refuse_transpose(ndim, x, weight, bias, stride, padding, output_padding, groups,
                      dilation, channels_last, out):
    with objmode():
        _TRANSPOSE[ndim](x, weight, bias, stride, padding, output_padding, groups, dilation,
                         channels_last, out)
    raise RuntimeError(_MISMATCH)


@register_jitable
def _refuse_input(ndim, input_shape, weight, grad_output, stride, padding, dilation, groups,
                  padding_mode, channels_last):
    with objmode():
        _INPUT[ndim](input_shape, weight, grad_output, stride, padding, dilation, groups,
                     padding_mode, channels_last)
    raise RuntimeError(_MISMATCH)


@register_jitable
def _refuse_weight(ndim, x, weight_shape, grad_output, stride, padding, dilation, groups,
                   padding_mode, channels_last):
    with objmode():
        _WEIGHT[ndim](x, weight_shape, grad_output, stride, padding, dilation, groups,
                      padding_mode, channels_last)
    raise RuntimeError(_MISMATCH)


@register_jitable
def _refuse_backward(ndim, x, weight, grad_output, stride, padding, dilation, groups,
                     padding_mode, channels_last, needs):
    with objmode():
        _BACKWARD[ndim](x, weight, grad_output, stride, padding, dilation, groups,
                        padding_mode, channels_last, needs)
    raise RuntimeError(_MISMATCH)


@register_jitable
def _refuse_transpose_backward(ndim, x, weight, grad_output, stride, padding, output_padding,
                               groups, dilation, channels_last, needs):
    with objmode():
        _TRANSPOSE_BACKWARD[ndim](x, weight, grad_output, stride, padding, output_padding,
                                  groups, dilation, channels_last, needs)
    raise RuntimeError(_MISMATCH)


@register_jitable
def _refuse_output_shape(input_size, kernel_size, stride, padding, dilation, transposed,
                         output_padding):
    with objmode():
        shapes.conv_output_shape(input_size, kernel_size, stride, padding, dilation,
                                 transposed=transposed, output_padding=output_padding)
    raise RuntimeError(_MISMATCH)


# =========================================================================== specs
@register_jitable
def _data_shape(shape, ndim, channels_last):
    """Batch, channels and spatial 3-tuple of a data shape (``_args.data_shape``)."""
    batched = len(shape) == ndim + 2
    first = 1 if batched else 0
    batch = shape[0] if batched else 1
    if channels_last:
        channels, spatial = shape[len(shape) - 1], first
    else:
        channels, spatial = shape[first], first + 1
    lead = 3 - ndim
    sizes = (np.int64(shape[spatial - lead]) if lead < 1 else np.int64(1),
             np.int64(shape[spatial + 1 - lead]) if lead < 2 else np.int64(1),
             np.int64(shape[spatial + 2 - lead]))
    return np.int64(batch), np.int64(channels), sizes


@register_jitable
def _size_ok(shape, itemsize):
    """Whether a result of ``shape`` fits this machine's memory (``_args.check_size``)."""
    for n in shape:
        if n <= 0:
            return True
    needed = np.int64(itemsize)
    for n in shape:
        if needed > _MEMORY_LIMIT // n:
            return False
        needed *= n
    return True


@register_jitable
def _forward_axis(n, k, s, d, mode, code, low, high):
    """Pads and output size of one dim of a forward convolution, and whether it is valid."""
    if k < 1 or s < 1 or d < 1:
        return low, high, np.int64(1), False
    if code == _SAME:
        low, high = _plan.same_pads(n, k, s, d)
    elif code == _FULL:
        low, high = _plan.full_pads(k, d)
    elif code == _VALID:
        low, high = 0, 0
    pad = max(low, high)
    valid = not (mode != 0 and n == 0 and pad > 0)
    valid = valid and not ((mode == 1 and pad >= n and pad > 0) or (mode == 3 and pad > n))
    valid = valid and n + low + high >= _plan.effective_kernel(k, d)
    size = _plan.conv_out_size(n, k, s, (low, high), d) if valid else 1
    return low, high, np.int64(size), valid


@register_jitable
def _conv_spec(ndim, channels, sizes, c_out, c_in_group, kernel, stride, dilation, groups,
               mode, code, lows, highs):
    """A forward convolution and whether it is valid (``_args.conv_spec``).

    The arguments are normalised to int64 and int64 3-tuples; ``code`` says how padding was
    given (``lows``/``highs`` hold explicit pads).
    """
    valid = groups >= 1 and mode >= 0 and code >= 0
    valid = valid and channels == c_in_group * groups and c_out % max(groups, 1) == 0
    lead = 3 - ndim
    low0, high0, out0, valid0 = _forward_axis(sizes[0], kernel[0], stride[0], dilation[0],
                                              mode, code, lows[0], highs[0])
    low1, high1, out1, valid1 = _forward_axis(sizes[1], kernel[1], stride[1], dilation[1],
                                              mode, code, lows[1], highs[1])
    low2, high2, out2, valid2 = _forward_axis(sizes[2], kernel[2], stride[2], dilation[2],
                                              mode, code, lows[2], highs[2])
    if lead > 0:  # unit leading dims
        low0, high0, out0, valid0 = 0, 0, 1, True
    if lead > 1:
        low1, high1, out1, valid1 = 0, 0, 1, True
    spec = _Spec(np.int64(ndim), channels, c_out, max(groups, 1), sizes, kernel, stride,
                 dilation, (low0, low1, low2), (high0, high1, high2), (out0, out1, out2),
                 max(mode, 0))
    return spec, valid and valid0 and valid1 and valid2


@register_jitable
def _transpose_axis(n, k, s, d, e, code, low, high):
    """Pads and output size of one dim of a transposed convolution, and whether valid."""
    if k < 1 or s < 1 or d < 1:
        return low, high, np.int64(1), False
    if code == _SAME:
        low, high = _plan.same_pads(n * s, k, s, d)
    elif code == _FULL:
        low, high = _plan.full_pads(k, d)
    elif code == _VALID:
        low, high = 0, 0
    size = np.int64(_plan.transpose_out_size(n, k, s, (low, high), d, e))
    return low, high, size, e < max(s, d) and size >= 0


@register_jitable
def _transpose_spec(ndim, channels, sizes, c_in, c_out_group, kernel, stride, dilation, extra,
                    groups, code, lows, highs):
    """A transposed convolution and whether it is valid (``_args.transpose_spec``).

    The spec is that of the forward convolution it is the adjoint of: ``in_sizes`` are the
    transposed convolution's output sizes and ``out_sizes`` its input sizes.
    """
    valid = groups >= 1 and code >= 0 and channels == c_in and c_in % max(groups, 1) == 0
    lead = 3 - ndim
    low0, high0, in0, valid0 = _transpose_axis(sizes[0], kernel[0], stride[0], dilation[0],
                                               extra[0], code, lows[0], highs[0])
    low1, high1, in1, valid1 = _transpose_axis(sizes[1], kernel[1], stride[1], dilation[1],
                                               extra[1], code, lows[1], highs[1])
    low2, high2, in2, valid2 = _transpose_axis(sizes[2], kernel[2], stride[2], dilation[2],
                                               extra[2], code, lows[2], highs[2])
    if lead > 0:  # unit leading dims
        low0, high0, in0, valid0 = 0, 0, 1, True
    if lead > 1:
        low1, high1, in1, valid1 = 0, 0, 1, True
    spec = _Spec(np.int64(ndim), c_out_group * max(groups, 1), c_in, max(groups, 1),
                 (in0, in1, in2), kernel, stride, dilation, (low0, low1, low2),
                 (high0, high1, high2), sizes, np.int64(0))
    return spec, valid and valid0 and valid1 and valid2


@register_jitable
def _forward_spec(data_shape, weight_shape, channels_last, stride, dilation, groups, mode,
                  code, lows, highs, bias_length, itemsize):
    """Spec and result shape of a forward convolution, and whether all is valid.

    Checks what ``_args.conv_spec``, ``check_bias`` and ``check_size`` check.
    """
    ndim = len(weight_shape) - 2
    batch, channels, sizes = _data_shape(data_shape, ndim, channels_last)
    spec, valid = _conv_spec(ndim, channels, sizes, np.int64(weight_shape[0]),
                             np.int64(weight_shape[1]), _to3(weight_shape[2:], np.int64(1)),
                             stride, dilation, groups, mode, code, lows, highs)
    shape = _full_shape(data_shape, weight_shape, channels_last, batch, spec.c_out,
                        spec.out_sizes)
    valid = valid and (bias_length == -1 or bias_length == spec.c_out)
    valid = valid and _size_ok(shape, itemsize)
    return spec, shape, valid


@register_jitable
def _transpose_spec_of(data_shape, weight_shape, channels_last, stride, dilation, extra,
                       groups, code, lows, highs, bias_length, itemsize):
    """Spec and result shape of a transposed convolution, and whether all is valid."""
    ndim = len(weight_shape) - 2
    batch, channels, sizes = _data_shape(data_shape, ndim, channels_last)
    spec, valid = _transpose_spec(ndim, channels, sizes, np.int64(weight_shape[0]),
                                  np.int64(weight_shape[1]),
                                  _to3(weight_shape[2:], np.int64(1)), stride, dilation, extra,
                                  groups, code, lows, highs)
    shape = _full_shape(data_shape, weight_shape, channels_last, batch, spec.c_in,
                        spec.in_sizes)
    valid = valid and (bias_length == -1 or bias_length == spec.c_in)
    valid = valid and _size_ok(shape, itemsize)
    return spec, shape, valid


@register_jitable
def _gradient_spec(data_shape, weight_shape, grad_shape, channels_last, stride, dilation,
                   groups, mode, code, lows, highs):
    """Spec of a gradient call, and whether it is valid with ``grad_output``'s shape."""
    ndim = len(weight_shape) - 2
    batch, channels, sizes = _data_shape(data_shape, ndim, channels_last)
    spec, valid = _conv_spec(ndim, channels, sizes, np.int64(weight_shape[0]),
                             np.int64(weight_shape[1]), _to3(weight_shape[2:], np.int64(1)),
                             stride, dilation, groups, mode, code, lows, highs)
    expected = _full_shape(data_shape, weight_shape, channels_last, batch, spec.c_out,
                           spec.out_sizes)
    return spec, valid and grad_shape == expected


@register_jitable
def _output_sizes(ndim, sizes, kernel, stride, dilation, extra, code, lows, highs,
                  transposed):
    """Output sizes (a 3-tuple) of ``conv_output_shape``, and whether the call is valid."""
    if transposed:
        spec, valid = _transpose_spec(ndim, np.int64(1), sizes, np.int64(1), np.int64(1),
                                      kernel, stride, dilation, extra, np.int64(1), code, lows,
                                      highs)
        return spec.in_sizes, valid
    spec, valid = _conv_spec(ndim, np.int64(1), sizes, np.int64(1), np.int64(1), kernel,
                             stride, dilation, np.int64(1), np.int64(0), code, lows, highs)
    return spec.out_sizes, valid


# =========================================================================== cores
@register_jitable
def _copy6(dest, source):
    """``dest[...] = source`` for two 6-D arrays of the same shape (with casting)."""
    n0, n1, n2, n3, n4, n5 = dest.shape
    for i0 in range(n0):
        for i1 in range(n1):
            for i2 in range(n2):
                for i3 in range(n3):
                    for i4 in range(n4):
                        for i5 in range(n5):
                            dest[i0, i1, i2, i3, i4, i5] = source[i0, i1, i2, i3, i4, i5]


@register_jitable
def _pack(weight, spec, dtype, adjoint):
    """Weights packed as ``(G, T0, T1, T2, Ig, Og)`` (as ``convolution._GatherPass``).

    ``weight`` is the 5-D view ``(C_out, C_in / G, T0, T1, T2)``; the packing is one strided
    copy, with the last two axes swapped for the adjoint.
    """
    groups = spec.groups
    out_group, in_group = spec.c_out // groups, spec.c_in // groups
    taps0, taps1, taps2 = spec.kernel
    out_stride, in_stride, tap0, tap1, tap2 = weight.strides
    if adjoint:
        shape = (groups, taps0, taps1, taps2, out_group, in_group)
        strides = (out_group * out_stride, tap0, tap1, tap2, out_stride, in_stride)
    else:
        shape = (groups, taps0, taps1, taps2, in_group, out_group)
        strides = (out_group * out_stride, tap0, tap1, tap2, in_stride, out_stride)
    packed = np.empty(shape, dtype)
    _copy6(packed, np.lib.stride_tricks.as_strided(weight, shape=shape, strides=strides))
    return packed


@register_jitable
def _pair_capacity(record):
    """:func:`fastconv._plan.pair_capacity` of a geometry row."""
    taps, mode = record[TAPS], record[MODE]
    if not record[ADJOINT] or mode == 0:
        return taps
    if mode == 2:
        span = record[PAD_LOW] + record[PAD_HIGH] + 1
        return taps * min(record[OUT_SIZE], -(-span // record[STRIDE]) + 1)
    return 3 * taps


@register_jitable
def _geometry(spec, adjoint):
    """Geometry records of the three canonical dims (``_plan.geometry_table``)."""
    geometry = np.empty((3, GEOMETRY_FIELDS), np.int64)
    lead = 3 - spec.ndim
    for axis in range(3):
        unit = axis < lead
        geometry[axis, ADJOINT] = 1 if adjoint else 0
        geometry[axis, IN_SIZE] = spec.in_sizes[axis]
        geometry[axis, OUT_SIZE] = spec.out_sizes[axis]
        geometry[axis, TAPS] = spec.kernel[axis]
        geometry[axis, STRIDE] = 1 if unit else spec.stride[axis]
        geometry[axis, DILATION] = 1 if unit else spec.dilation[axis]
        geometry[axis, PAD_LOW] = spec.pad_low[axis]
        geometry[axis, PAD_HIGH] = spec.pad_high[axis]
        geometry[axis, MODE] = 0 if unit else spec.mode
    return geometry


@register_jitable
def _gather(src, packed, bias, dest, spec, adjoint):
    """Run the gather kernel writing every element of ``dest`` (as ``convolution._GatherPass``)."""
    if dest.size == 0:
        return
    geometry = _geometry(spec, adjoint)
    capacity = np.empty(3, np.int64)
    for axis in range(3):
        capacity[axis] = _pair_capacity(geometry[axis])
    block, group_block = _plan.gather_blocks(dest.shape[0], dest.shape[1], dest.shape[2],
                                             dest.shape[3], packed.shape[0], packed.shape[4],
                                             packed.shape[5], dest.itemsize)
    _call_gather(_address(_slot(_GATHER, dest)),
                 (src, packed, bias, dest, geometry, capacity, np.int64(block),
                  np.int64(group_block), _address(_slot(_GATHER_TASK, dest))))


@register_jitable
def _bias_vector(bias, has_bias, length, dtype):
    """The bias as a contiguous vector (as ``convolution._GatherPass``); zeros without one."""
    vector = np.zeros(length, dtype)
    if has_bias:
        for i in range(length):
            vector[i] = bias[i]
    return vector


def _forward_core(src, weight, bias, has_bias, dest, spec):
    """Compiled core of the forward pass: ``dest = conv(src, weight) + bias``.

    All arrays are canonical views (``weight`` as ``(C_out, C_in / G, T0, T1, T2)``) of the
    result's dtype; see ``convolution._forward_pass``.
    """
    packed = _pack(weight, spec, dest.dtype, False)
    _gather(src, packed, _bias_vector(bias, has_bias, spec.c_out, dest.dtype), dest, spec,
            False)


def _adjoint_core(src, weight, bias, has_bias, dest, spec):
    """Compiled core of the adjoint pass (input gradient, transposed convolution).

    As :func:`_forward_core`, for ``convolution._adjoint_pass``.
    """
    packed = _pack(weight, spec, dest.dtype, True)
    _gather(src, packed, _bias_vector(bias, has_bias, spec.c_in, dest.dtype), dest, spec,
            True)


@register_jitable
def _pairwise_sum(values):
    """``0 + pairwise_sum(values)``: NumPy's ``add.reduce`` of a short contiguous axis.

    NumPy sums fewer than 8 values in order from -0.0, and 8 to 128 values in eight
    interleaved partial sums combined as a tree (``pairwise_sum`` in NumPy's loops), then
    adds the result to the identity 0.
    """
    n = values.shape[0]
    acc = np.empty(8, values.dtype)
    if n < 8:
        acc[0] = -0.0
        for i in range(n):
            acc[0] += values[i]
        total = acc[0]
    else:
        for j in range(8):
            acc[j] = values[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                acc[j] += values[i + j]
            i += 8
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        while i < n:
            total += values[i]
            i += 1
    acc[1] = 0.0
    return acc[1] + total


@register_jitable
def _chunk_sum(partial):
    """``partial[0]`` for one chunk, else ``partial.sum(axis=0)`` in NumPy's order.

    NumPy adds the rows of a C-contiguous ``(chunks, M)`` array one by one onto zeros,
    except when ``M == 1``: then the summed axis is the only one and it sums pairwise.
    """
    chunks = partial.shape[0]
    total = np.zeros(partial.shape[1:], partial.dtype)
    size = total.size
    rows = partial.reshape((chunks, size))
    flat = total.reshape(size)
    if chunks == 1:
        for m in range(size):
            flat[m] = rows[0, m]
    elif size == 1:
        if chunks > 128:
            raise AssertionError("fastconv: more weight-gradient chunks than expected")
        flat[0] = _pairwise_sum(rows[:, 0])
    else:
        for chunk in range(chunks):
            for m in range(size):
                flat[m] += rows[chunk, m]
    return total


def _weight_core(src, grad_output, spec, grad_weight, grad_bias, want_weight, want_bias):
    """Compiled core of the weight and bias gradients (``convolution._WeightPass``).

    ``src`` and ``grad_output`` are canonical views, ``grad_weight`` the 5-D view
    ``(C_out, C_in / G, T0, T1, T2)`` of the result (empty when not wanted) and
    ``grad_bias`` a vector (empty when not wanted); both are written.
    """
    dtype = grad_weight.dtype
    # unit stride along channels lets the kernel's innermost loop vectorise
    grad_out = np.ascontiguousarray(grad_output)
    groups = spec.groups
    in_group, out_group = spec.c_in // groups, spec.c_out // groups
    taps0, taps1, taps2 = spec.kernel
    in_block = max(1, min(in_group, 64, 16384 // max(1, out_group * grad_out.itemsize)))
    tiles = groups * taps0 * taps1 * taps2 * max(1, -(-in_group // in_block))
    rows = grad_out.shape[0] * grad_out.shape[1] * grad_out.shape[2]
    work = grad_out.size * taps0 * taps1 * taps2 * in_group
    chunks = _plan.reduction_chunks(rows, tiles, work)
    partial_b = np.zeros((chunks, spec.c_out), dtype)
    if want_weight:
        partial_w = np.zeros((chunks, groups, taps0, taps1, taps2, in_group, out_group), dtype)
        if partial_w.size or want_bias:
            _call_weight_grad(_address(_slot(_WEIGHT_GRAD, partial_w)),
                              (src, grad_out, _geometry(spec, False), np.int64(in_block),
                               want_bias, partial_w, partial_b,
                               _address(_slot(_WEIGHT_GRAD_TASK, partial_w))))
        out_stride, in_stride, tap0, tap1, tap2 = grad_weight.strides
        grouped = np.lib.stride_tricks.as_strided(
            grad_weight, shape=partial_w.shape[1:],
            strides=(out_group * out_stride, tap0, tap1, tap2, in_stride, out_stride))
        _copy6(grouped, _chunk_sum(partial_w))
    elif want_bias and partial_b.size:
        _call_bias_grad(_address(_slot(_BIAS_GRAD, partial_b)), (grad_out, groups, partial_b))
    if want_bias:
        summed = _chunk_sum(partial_b)
        for i in range(spec.c_out):
            grad_bias[i] = summed[i]


_CORES = tuple(njit(nogil=True)(core) for core in (_forward_core, _adjoint_core, _weight_core))


# =========================================================================== passes
def _cast(array, dtype):
    """``array.astype(dtype, copy=False)``."""
    return array.astype(dtype, copy=False)


@overload(_cast)
def _cast_overload(array, dtype):
    if array.dtype == dtype.instance_type:
        return lambda array, dtype: array
    return lambda array, dtype: array.astype(dtype)


@register_jitable
def _canonical(array, ndim, channels_last):
    """A strided view of ``array`` in the kernels' ``(N, D0, D1, D2, C)`` order (no copy).

    As :func:`fastconv.convolution._canonical`; a missing batch dim and missing leading
    spatial dims are unit dims with stride 0.
    """
    shape, strides = array.shape, array.strides
    batched = array.ndim == ndim + 2
    first = 1 if batched else 0
    if channels_last:
        channel_axis, spatial = array.ndim - 1, first
    else:
        channel_axis, spatial = first, first + 1
    lead = 3 - ndim
    view_shape = (shape[0] if batched else 1,
                  shape[spatial - lead] if lead < 1 else 1,
                  shape[spatial + 1 - lead] if lead < 2 else 1,
                  shape[spatial + 2 - lead],
                  shape[channel_axis])
    view_strides = (strides[0] if batched else 0,
                    strides[spatial - lead] if lead < 1 else 0,
                    strides[spatial + 1 - lead] if lead < 2 else 0,
                    strides[spatial + 2 - lead],
                    strides[channel_axis])
    return np.lib.stride_tricks.as_strided(array, shape=view_shape, strides=view_strides)


@register_jitable
def _weight_view(weight):
    """A ``(C_out, C_in / G, *kernel)`` array as the 5-D view ``(C_out, C_in / G, T0, T1, T2)``."""
    shape, strides = weight.shape, weight.strides
    taps = _to3(shape[2:], np.int64(1))
    tap_strides = _to3(strides[2:], np.int64(0))
    return np.lib.stride_tricks.as_strided(
        weight, shape=(shape[0], shape[1], taps[0], taps[1], taps[2]),
        strides=(strides[0], strides[1], tap_strides[0], tap_strides[1], tap_strides[2]))


def _bias_argument(bias, dtype):
    """``(bias as dtype, True)``, or ``(empty vector, False)`` for None."""
    return (np.zeros(0, dtype), False) if bias is None else (bias.astype(dtype), True)


@overload(_bias_argument)
def _bias_argument_overload(bias, dtype):
    if _is_none(bias):
        return lambda bias, dtype: (np.zeros(0, dtype), False)
    return lambda bias, dtype: (_cast(bias, dtype), True)


@register_jitable
def _run_forward(x, weight, bias, spec, dest, channels_last, dtype):
    """``dest = conv(x, weight) + bias`` on canonical views, by the forward core."""
    vector, has_bias = _bias_argument(bias, dtype)
    _call_forward_core(_address(_slot(_FORWARD_CORE, dest)),
                       (_canonical(_cast(x, dtype), spec.ndim, channels_last),
                        _weight_view(_cast(weight, dtype)), vector, has_bias,
                        _canonical(dest, spec.ndim, channels_last), spec))


@register_jitable
def _run_adjoint(source, weight, bias, spec, dest, channels_last, dtype):
    """The adjoint of ``spec`` applied to ``source`` into ``dest``, by the adjoint core."""
    vector, has_bias = _bias_argument(bias, dtype)
    _call_adjoint_core(_address(_slot(_ADJOINT_CORE, dest)),
                       (_canonical(_cast(source, dtype), spec.ndim, channels_last),
                        _weight_view(_cast(weight, dtype)), vector, has_bias,
                        _canonical(dest, spec.ndim, channels_last), spec))


@register_jitable
def _run_weight(x, grad_output, spec, weight_shape, channels_last, dtype, want_weight,
                want_bias):
    """Weight and bias gradients by the weight core; (grad_weight, grad_bias), empty if unwanted."""
    grad_weight = np.empty(weight_shape if want_weight else (0,) + weight_shape[1:], dtype)
    grad_bias = np.empty(spec.c_out if want_bias else 0, dtype)
    _call_weight_core(_address(_slot(_WEIGHT_CORE, grad_weight)),
                      (_canonical(_cast(x, dtype), spec.ndim, channels_last),
                       _canonical(_cast(grad_output, dtype), spec.ndim, channels_last), spec,
                       _weight_view(grad_weight), grad_bias, want_weight, want_bias))
    return grad_weight, grad_bias


@register_jitable
def _extent(array):
    """First and one-past-last byte an array can touch."""
    low = high = np.int64(array.ctypes.data)
    for axis in range(array.ndim):
        step = (array.shape[axis] - 1) * array.strides[axis]
        if step < 0:
            low += step
        else:
            high += step
    return low, high + array.itemsize


@register_jitable
def _overlaps(a, b):
    """``np.may_share_memory(a, b)``: whether the memory bounds of two arrays overlap."""
    if a.size == 0 or b.size == 0:
        return False
    a_low, a_high = _extent(a)
    b_low, b_high = _extent(b)
    return a_low < b_high and b_low < a_high


def _overlaps_any(out, x, weight, bias):
    """Whether ``out`` may share memory with an input (``convolution._destination``)."""
    return any(np.may_share_memory(out, a) for a in (x, weight, bias) if a is not None)


@overload(_overlaps_any)
def _overlaps_any_overload(out, x, weight, bias):
    if _is_none(bias):
        return lambda out, x, weight, bias: _overlaps(out, x) or _overlaps(out, weight)
    return lambda out, x, weight, bias: (_overlaps(out, x) or _overlaps(out, weight)
                                         or _overlaps(out, bias))


@register_jitable
def _copy_into(out, result):
    """``out[...] = result`` (``convolution._finish``)."""
    for index in np.ndindex(out.shape):
        out[index] = result[index]


def _deliver(run, x, weight, bias, spec, shape, channels_last, dtype, out):
    """Run ``run`` into a new array or into ``out`` (``convolution._destination``).

    When ``out`` may share memory with an input, the result is computed into a temporary
    and copied (``convolution._finish``).
    """
    return out


@overload(_deliver)
def _deliver_overload(run, x, weight, bias, spec, shape, channels_last, dtype, out):
    if _is_none(out):
        def new(run, x, weight, bias, spec, shape, channels_last, dtype, out):
            result = np.empty(shape, dtype)
            run(x, weight, bias, spec, result, channels_last, dtype)
            return result
        return new

    def into(run, x, weight, bias, spec, shape, channels_last, dtype, out):
        if _overlaps_any(out, x, weight, bias):
            result = np.empty(shape, dtype)
            run(x, weight, bias, spec, result, channels_last, dtype)
            _copy_into(out, result)
        else:
            run(x, weight, bias, spec, out, channels_last, dtype)
        return out
    return into


# =========================================================================== bodies
def _forward_body(dtype):
    """Compiled body of ``conv{d}d`` computing in ``dtype`` (``convolution._forward``)."""
    itemsize = np.dtype(dtype).itemsize

    def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
             padding_mode="zeros", channels_last=False, out=None):
        ndim = weight.ndim - 2
        strides, valid_stride = _per_dim(stride, ndim, 1, np.int64(1))
        dilations, valid_dilation = _per_dim(dilation, ndim, 1, np.int64(1))
        code, lows, highs, valid_padding = _padding(padding, ndim)
        spec, shape, valid = _forward_spec(x.shape, weight.shape, channels_last, strides,
                                           dilations, np.int64(groups),
                                           _string_code(padding_mode, _mode_code), code, lows,
                                           highs, _length(bias), itemsize)
        if not (valid and valid_stride and valid_dilation and valid_padding
                and _out_ok(out, shape)):
            _refuse_conv(ndim, x, weight, bias, stride, padding, dilation, groups,
                         padding_mode, channels_last, out)
        return _deliver(_run_forward, x, weight, bias, spec, shape, channels_last, dtype,
                        out)

    return conv


@register_jitable
def _transpose_setup(x_shape, weight_shape, stride, padding, output_padding, groups, dilation,
                     channels_last, bias_length, itemsize):
    """Spec and result shape of a transposed convolution's options, and whether all is valid.

    The per-dim options and the padding parsed, then :func:`_transpose_spec_of` (a
    ``bias_length`` of -1: no bias; an ``itemsize`` of 0: no size check).
    """
    ndim = len(weight_shape) - 2
    strides, valid_stride = _per_dim(stride, ndim, 1, np.int64(1))
    dilations, valid_dilation = _per_dim(dilation, ndim, 1, np.int64(1))
    extra, valid_extra = _per_dim(output_padding, ndim, 0, np.int64(0))
    code, lows, highs, valid_padding = _padding(padding, ndim)
    spec, shape, valid = _transpose_spec_of(x_shape, weight_shape, channels_last, strides,
                                            dilations, extra, np.int64(groups), code, lows,
                                            highs, bias_length, itemsize)
    return spec, shape, (valid and valid_stride and valid_dilation and valid_extra
                         and valid_padding)


def _transpose_body(dtype):
    """Compiled body of ``conv_transpose{d}d`` in ``dtype`` (``convolution._transpose``)."""
    itemsize = np.dtype(dtype).itemsize

    def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1, channels_last=False, out=None):
        ndim = weight.ndim - 2
        spec, shape, valid = _transpose_setup(x.shape, weight.shape, stride, padding,
                                              output_padding, groups, dilation, channels_last,
                                              _length(bias), itemsize)
        if not (valid and _out_ok(out, shape)):
            _refuse_transpose(ndim, x, weight, bias, stride, padding, output_padding, groups,
                              dilation, channels_last, out)
        return _deliver(_run_adjoint, x, weight, bias, spec, shape, channels_last, dtype,
                        out)

    return conv_transpose


@register_jitable
def _gradient_setup(data_shape, weight_shape, grad_output, stride, padding, dilation, groups,
                    padding_mode, channels_last):
    """Spec of a gradient call and whether it is valid."""
    ndim = len(weight_shape) - 2
    strides, valid_stride = _per_dim(stride, ndim, 1, np.int64(1))
    dilations, valid_dilation = _per_dim(dilation, ndim, 1, np.int64(1))
    code, lows, highs, valid_padding = _padding(padding, ndim)
    spec, valid = _gradient_spec(data_shape, weight_shape, grad_output.shape, channels_last,
                                 strides, dilations, np.int64(groups),
                                 _string_code(padding_mode, _mode_code), code, lows, highs)
    return spec, valid and valid_stride and valid_dilation and valid_padding


@register_jitable
def _input_gradient(x_shape, weight, grad_output, spec, channels_last, dtype):
    grad_input = np.empty(x_shape, dtype)
    _run_adjoint(grad_output, weight, None, spec, grad_input, channels_last, dtype)
    return grad_input


@register_jitable
def _no_input_gradient(x_shape, weight, grad_output, spec, channels_last, dtype):
    return None


@register_jitable
def _no_weight_gradients(x, grad_output, spec, weight_shape, channels_last, dtype,
                         want_weight, want_bias):
    return None, None


@register_jitable
def _keep(value):
    return value


@register_jitable
def _drop(value):
    return None


def _backward_body(dtype, needs):
    """Compiled body of ``conv{d}d_backward`` (``convolution._gradients``).

    With ``needs`` the constant (input, weight, bias) flags, what is not needed is typed
    None; with ``needs=None`` the flags are read at run time and the results are Optional.
    """
    itemsize = np.dtype(dtype).itemsize
    want_input, want_weight, want_bias = (True, True, True) if needs is None else needs
    input_part = _input_gradient if want_input else _no_input_gradient
    weight_part = _run_weight if want_weight or want_bias else _no_weight_gradients
    pick_weight = _keep if want_weight else _drop
    pick_bias = _keep if want_bias else _drop

    def conv_backward_constant(x, weight, grad_output, stride=1, padding=0, dilation=1,
                               groups=1, padding_mode="zeros", channels_last=False,
                               needs=("input", "weight", "bias")):
        spec, valid = _gradient_setup(x.shape, weight.shape, grad_output, stride, padding,
                                      dilation, groups, padding_mode, channels_last)
        if not (valid and (not want_input or _size_ok(x.shape, itemsize))
                and (not want_weight or _size_ok(weight.shape, itemsize))):
            _refuse_backward(spec.ndim, x, weight, grad_output, stride, padding, dilation,
                             groups, padding_mode, channels_last, needs)
        grad_input = input_part(x.shape, weight, grad_output, spec, channels_last, dtype)
        grad_weight, grad_bias = weight_part(x, grad_output, spec, weight.shape, channels_last,
                                             dtype, want_weight, want_bias)
        return grad_input, pick_weight(grad_weight), pick_bias(grad_bias)

    def conv_backward(x, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
                      padding_mode="zeros", channels_last=False,
                      needs=("input", "weight", "bias")):
        wants_input, wants_weight, wants_bias, valid_needs = _needs_flags(needs)
        spec, valid = _gradient_setup(x.shape, weight.shape, grad_output, stride, padding,
                                      dilation, groups, padding_mode, channels_last)
        if not (valid_needs and valid and (not wants_input or _size_ok(x.shape, itemsize))
                and (not wants_weight or _size_ok(weight.shape, itemsize))):
            _refuse_backward(spec.ndim, x, weight, grad_output, stride, padding, dilation,
                             groups, padding_mode, channels_last, needs)
        grad_input = None
        if wants_input:
            grad_input = _input_gradient(x.shape, weight, grad_output, spec, channels_last,
                                         dtype)
        grad_weight = None
        grad_bias = None
        if wants_weight or wants_bias:
            weights, biases = _run_weight(x, grad_output, spec, weight.shape, channels_last,
                                              dtype, wants_weight, wants_bias)
            if wants_weight:
                grad_weight = weights
            if wants_bias:
                grad_bias = biases
        return grad_input, grad_weight, grad_bias

    return conv_backward if needs is None else conv_backward_constant


@register_jitable
def _transpose_gradient_setup(x, weight, grad_output, stride, padding, output_padding, groups,
                              dilation, channels_last):
    """Spec of a transposed convolution's gradient call, and whether it is valid.

    Checks what ``convolution._transpose_backward_plan`` checks: the options
    (``_args.transpose_spec``) and that ``grad_output`` has the transposed convolution's
    output shape. No bias, and no size check: the results have the shapes of ``x``,
    ``weight`` and a channel vector (an itemsize of 0 turns :func:`_size_ok` off).
    """
    spec, shape, valid = _transpose_setup(x.shape, weight.shape, stride, padding,
                                          output_padding, groups, dilation, channels_last,
                                          np.int64(-1), np.int64(0))
    return spec, valid and grad_output.shape == shape


@register_jitable
def _bias_spec(spec):
    """Spec under which the weight core sums the channels of a transposed conv's gradient.

    A 1x1 convolution from one channel to ``spec.c_in`` channels in one group: the weight
    core's bias-only path then splits the sums into ``reduction_chunks(rows, 1, elements)``
    chunks, as ``convolution._BiasPass`` on a channels-last view does.
    """
    one, zero = np.int64(1), np.int64(0)
    ones, zeros = (one, one, one), (zero, zero, zero)
    return _Spec(spec.ndim, one, spec.c_in, one, spec.in_sizes, ones, ones, ones, zeros, zeros,
                 spec.in_sizes, zero)


@register_jitable
def _transposed_input_gradient(x, weight, grad_output, spec, channels_last, dtype):
    """Gradient with respect to ``x``: the forward convolution ``spec`` of ``grad_output``."""
    grad_input = np.empty(x.shape, dtype)
    _run_forward(grad_output, weight, None, spec, grad_input, channels_last, dtype)
    return grad_input


@register_jitable
def _transposed_weight_gradient(x, weight, grad_output, spec, channels_last, dtype):
    """Weight gradient: that of ``spec`` with input ``grad_output`` and output gradient ``x``."""
    return _run_weight(grad_output, x, spec, weight.shape, channels_last, dtype, True,
                       False)[0]


@register_jitable
def _transposed_bias_gradient(x, weight, grad_output, spec, channels_last, dtype):
    """Bias gradient: the channel sums of ``grad_output`` (``convolution._BiasPass``)."""
    return _run_weight(grad_output, grad_output, _bias_spec(spec), weight.shape, channels_last,
                       dtype, False, True)[1]


@register_jitable
def _no_transposed_gradient(x, weight, grad_output, spec, channels_last, dtype):
    return None


def _transpose_backward_body(dtype, needs):
    """Compiled body of ``conv_transpose{d}d_backward`` (``convolution._transpose_gradients``).

    ``spec`` is the forward convolution the transposed one is the adjoint of (its input has
    ``grad_output``'s shape, its output ``x``'s). With ``needs`` the constant (input, weight,
    bias) flags, what is not needed is typed None; with ``needs=None`` the flags are read at
    run time and the results are Optional.
    """
    want_input, want_weight, want_bias = (True, True, True) if needs is None else needs
    input_part = _transposed_input_gradient if want_input else _no_transposed_gradient
    weight_part = _transposed_weight_gradient if want_weight else _no_transposed_gradient
    bias_part = _transposed_bias_gradient if want_bias else _no_transposed_gradient

    def conv_transpose_backward_constant(x, weight, grad_output, stride=1, padding=0,
                                         output_padding=0, groups=1, dilation=1,
                                         channels_last=False,
                                         needs=("input", "weight", "bias")):
        spec, valid = _transpose_gradient_setup(x, weight, grad_output, stride, padding,
                                                output_padding, groups, dilation,
                                                channels_last)
        if not valid:
            _refuse_transpose_backward(spec.ndim, x, weight, grad_output, stride, padding,
                                       output_padding, groups, dilation, channels_last, needs)
        source, kernel = _cast(x, dtype), _cast(weight, dtype)
        gradient = _cast(grad_output, dtype)
        return (input_part(source, kernel, gradient, spec, channels_last, dtype),
                weight_part(source, kernel, gradient, spec, channels_last, dtype),
                bias_part(source, kernel, gradient, spec, channels_last, dtype))

    def conv_transpose_backward(x, weight, grad_output, stride=1, padding=0, output_padding=0,
                                groups=1, dilation=1, channels_last=False,
                                needs=("input", "weight", "bias")):
        wants_input, wants_weight, wants_bias, valid_needs = _needs_flags(needs)
        spec, valid = _transpose_gradient_setup(x, weight, grad_output, stride, padding,
                                                output_padding, groups, dilation,
                                                channels_last)
        if not (valid_needs and valid):
            _refuse_transpose_backward(spec.ndim, x, weight, grad_output, stride, padding,
                                       output_padding, groups, dilation, channels_last, needs)
        source, kernel = _cast(x, dtype), _cast(weight, dtype)
        gradient = _cast(grad_output, dtype)
        grad_input = None
        if wants_input:
            grad_input = _transposed_input_gradient(source, kernel, gradient, spec,
                                                    channels_last, dtype)
        grad_weight = None
        if wants_weight:
            grad_weight = _transposed_weight_gradient(source, kernel, gradient, spec,
                                                      channels_last, dtype)
        grad_bias = None
        if wants_bias:
            grad_bias = _transposed_bias_gradient(source, kernel, gradient, spec,
                                                  channels_last, dtype)
        return grad_input, grad_weight, grad_bias

    return conv_transpose_backward if needs is None else conv_transpose_backward_constant


def _input_body(dtype):
    """Compiled body of ``conv{d}d_input`` (``convolution._input_grad``)."""
    itemsize = np.dtype(dtype).itemsize

    def conv_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1,
                   groups=1, padding_mode="zeros", channels_last=False):
        shape, valid_shape = _shape_values(input_shape)
        spec, valid = _gradient_setup(shape, weight.shape, grad_output, stride, padding,
                                      dilation, groups, padding_mode, channels_last)
        if not (valid_shape and valid and _size_ok(shape, itemsize)):
            _refuse_input(spec.ndim, input_shape, weight, grad_output, stride, padding,
                          dilation, groups, padding_mode, channels_last)
        return _input_gradient(shape, weight, grad_output, spec, channels_last, dtype)

    return conv_input


def _weight_body(dtype):
    """Compiled body of ``conv{d}d_weight`` (``convolution._weight_grad``)."""
    itemsize = np.dtype(dtype).itemsize

    def conv_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", channels_last=False):
        shape, valid_shape = _shape_values(weight_shape)
        spec, valid = _gradient_setup(x.shape, shape, grad_output, stride, padding, dilation,
                                      groups, padding_mode, channels_last)
        if not (valid_shape and valid and _size_ok(shape, itemsize)):
            _refuse_weight(spec.ndim, x, weight_shape, grad_output, stride, padding, dilation,
                           groups, padding_mode, channels_last)
        return _run_weight(x, grad_output, spec, shape, channels_last, dtype, True, False)[0]

    return conv_weight


@register_jitable
def _output_shape_3(ndim, input_size, kernel_size, stride, padding, dilation, transposed,
                    output_padding):
    """Output sizes of ``conv_output_shape`` as a 3-tuple (the last ``ndim`` count)."""
    sizes, valid_sizes = _per_dim(input_size, ndim, 0, np.int64(1))
    kernel, valid_kernel = _per_dim(kernel_size, ndim, 1, np.int64(1))
    strides, valid_stride = _per_dim(stride, ndim, 1, np.int64(1))
    dilations, valid_dilation = _per_dim(dilation, ndim, 1, np.int64(1))
    extra, valid_extra = _per_dim(output_padding, ndim, 0, np.int64(0))
    code, lows, highs, valid_padding = _padding(padding, ndim)
    result, valid = _output_sizes(ndim, sizes, kernel, strides, dilations, extra, code, lows,
                                  highs, transposed)
    if not (valid and valid_sizes and valid_kernel and valid_stride and valid_dilation
            and valid_padding and (valid_extra or not transposed)):
        _refuse_output_shape(input_size, kernel_size, stride, padding, dilation, transposed,
                             output_padding)
    return result


def _output_shape_body(input_size, kernel_size, stride=1, padding=0, dilation=1,
                       transposed=False, output_padding=0):
    """Compiled body of :func:`fastconv.conv_output_shape` for a tuple ``input_size``."""
    return _tail(_output_shape_3(len(input_size), input_size, kernel_size, stride, padding,
                                 dilation, transposed, output_padding), input_size)


def _output_size_body(input_size, kernel_size, stride=1, padding=0, dilation=1,
                      transposed=False, output_padding=0):
    """Compiled body of :func:`fastconv.conv_output_shape` for an int ``input_size``."""
    return _output_shape_3(1, input_size, kernel_size, stride, padding, dilation, transposed,
                           output_padding)[2]


_FORWARD_BODIES = {dt: _forward_body(dt) for dt in _DTYPES}
_TRANSPOSE_BODIES = {dt: _transpose_body(dt) for dt in _DTYPES}
_INPUT_BODIES = {dt: _input_body(dt) for dt in _DTYPES}
_WEIGHT_BODIES = {dt: _weight_body(dt) for dt in _DTYPES}
# ``needs`` read at run time (None), and every constant (input, weight, bias) combination
_NEEDS_FLAGS = [None] + [(i, w, b) for i in (False, True) for w in (False, True)
                         for b in (False, True)]
_BACKWARD_BODIES = {
    (dt, needs): _backward_body(dt, needs)
    for dt in _DTYPES
    for needs in _NEEDS_FLAGS
}
_TRANSPOSE_BACKWARD_BODIES = {
    (dt, needs): _transpose_backward_body(dt, needs) for dt in _DTYPES for needs in _NEEDS_FLAGS
}


# =========================================================================== registration
def _register_conv(d: int) -> None:
    typer = _Typer(f"conv{d}d", d)

    def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
             padding_mode="zeros", channels_last=False, out=None):
        typer.data("x", x)
        typer.weight("weight", weight)
        typer.bias(bias)
        typer.conv_options(stride, padding, dilation, groups, padding_mode, channels_last)
        arrays = {"x": x, "weight": weight} | ({} if _is_none(bias) else {"bias": bias})
        dtype = typer.result_dtype(**arrays)
        typer.out(out, x.ndim, dtype)
        return _FORWARD_BODIES[dtype]

    overload(_CONV[d])(conv)


def _register_transpose(d: int) -> None:
    typer = _Typer(f"conv_transpose{d}d", d)

    def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1, channels_last=False, out=None):
        typer.data("x", x)
        typer.weight("weight", weight)
        typer.bias(bias)
        typer.transpose_options(stride, padding, output_padding, groups, dilation,
                                channels_last)
        arrays = {"x": x, "weight": weight} | ({} if _is_none(bias) else {"bias": bias})
        dtype = typer.result_dtype(**arrays)
        typer.out(out, x.ndim, dtype)
        return _TRANSPOSE_BODIES[dtype]

    overload(_TRANSPOSE[d])(conv_transpose)


def _register_input(d: int) -> None:
    typer = _Typer(f"conv{d}d_input", d)

    def conv_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1,
                   groups=1, padding_mode="zeros", channels_last=False):
        typer.shape("input_shape", input_shape, (d + 1, d + 2))
        typer.weight("weight", weight)
        typer.array("grad_output", grad_output, (len(input_shape),),
                    f"{len(input_shape)} dims like input_shape")
        typer.conv_options(stride, padding, dilation, groups, padding_mode, channels_last)
        return _INPUT_BODIES[typer.result_dtype(weight=weight, grad_output=grad_output)]

    overload(_INPUT[d])(conv_input)


def _register_weight(d: int) -> None:
    typer = _Typer(f"conv{d}d_weight", d)

    def conv_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", channels_last=False):
        typer.data("x", x)
        typer.shape("weight_shape", weight_shape, (d + 2,))
        typer.array("grad_output", grad_output, (x.ndim,), f"{x.ndim} dims like x")
        typer.conv_options(stride, padding, dilation, groups, padding_mode, channels_last)
        return _WEIGHT_BODIES[typer.result_dtype(x=x, grad_output=grad_output)]

    overload(_WEIGHT[d])(conv_weight)


def _register_backward(d: int) -> None:
    typer = _Typer(f"conv{d}d_backward", d)

    def conv_backward(x, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
                      padding_mode="zeros", channels_last=False,
                      needs=("input", "weight", "bias")):
        typer.data("x", x)
        typer.weight("weight", weight)
        typer.array("grad_output", grad_output, (x.ndim,), f"{x.ndim} dims like x")
        typer.conv_options(stride, padding, dilation, groups, padding_mode, channels_last)
        wanted = typer.needs(needs)
        dtype = typer.result_dtype(x=x, weight=weight, grad_output=grad_output)
        return _BACKWARD_BODIES[dtype, wanted]

    overload(_BACKWARD[d])(conv_backward)


def _register_transpose_backward(d: int) -> None:
    typer = _Typer(f"conv_transpose{d}d_backward", d)

    def conv_transpose_backward(x, weight, grad_output, stride=1, padding=0, output_padding=0,
                                groups=1, dilation=1, channels_last=False,
                                needs=("input", "weight", "bias")):
        typer.data("x", x)
        typer.weight("weight", weight)
        typer.array("grad_output", grad_output, (x.ndim,), f"{x.ndim} dims like x")
        typer.transpose_options(stride, padding, output_padding, groups, dilation,
                                channels_last)
        wanted = typer.needs(needs)
        dtype = typer.result_dtype(x=x, weight=weight, grad_output=grad_output)
        return _TRANSPOSE_BACKWARD_BODIES[dtype, wanted]

    overload(_TRANSPOSE_BACKWARD[d])(conv_transpose_backward)


def _register_output_shape() -> None:
    def conv_output_shape(input_size, kernel_size, stride=1, padding=0, dilation=1,
                          transposed=False, output_padding=0):
        scalar = _is_int(input_size)
        if not (scalar or (_is_int_tuple(input_size) and 1 <= len(input_size) <= 3)):
            raise TypingError("fastconv.conv_output_shape in compiled code: input_size must be "
                              f"an int or a tuple of 1 to 3 ints, got {input_size}")
        typer = _Typer("conv_output_shape", 1 if scalar else len(input_size))
        typer.per_dim("kernel_size", kernel_size)
        typer.per_dim("stride", stride)
        typer.padding(padding)
        typer.per_dim("dilation", dilation)
        typer.flag("transposed", transposed)
        typer.per_dim("output_padding", output_padding)
        return _output_size_body if scalar else _output_shape_body

    overload(shapes.conv_output_shape)(conv_output_shape)


for _d in (1, 2, 3):
    _register_conv(_d)
    _register_transpose(_d)
    _register_input(_d)
    _register_weight(_d)
    _register_backward(_d)
    _register_transpose_backward(_d)
_register_output_shape()
del _d
