"""The one place where Numba compilation options are chosen.

Every compiled function in fastconv is declared with :func:`kernel` (parallel loops),
:func:`helper` or :func:`inlined` (serial code called from kernels), so the options below
hold everywhere:

``cache=True``
    Compiled machine code is written next to the module (or to ``NUMBA_CACHE_DIR``) so a
    second process pays no compile time; :mod:`fastconv._runtime` makes sure a read-only
    install degrades to another directory or to no cache, with a warning.
``fastmath={"contract"}``
    Only lets LLVM fuse ``a * b + c`` into one FMA instruction. No reassociation (results
    stay bitwise reproducible and independent of the thread count), and NaN/inf keep
    IEEE semantics (``0 * nan`` is ``nan``).
``error_model="numpy"``
    Division by zero gives inf/nan like NumPy instead of raising (kernels never divide
    by data, but this removes the checks from generated code).
``nogil=True``
    Kernels release the GIL, so Python threads calling fastconv run concurrently.

Calls by address
----------------
Numba links a copy of each function a compiled function calls into the caller's module,
then optimises it and generates its machine code again there. A parallel kernel's loop
body is a function of its own, so a task function called from it was compiled three times
(alone, in the loop body, in the kernel), which was half of the cold compile. Kernels
therefore take their task function's address (:func:`address_of`, passed as the last
argument ``task_at``) and call it through :func:`caller`: each task function is compiled
once, and a kernel compiles in about a second.
"""

from __future__ import annotations

import threading
from functools import cache
from types import FunctionType

from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.core.typeconv import Conversion
from numba.extending import intrinsic
from numba.np.numpy_support import as_dtype

from ._runtime import CACHE

FASTMATH = frozenset({"contract"})

_COMMON = {"cache": CACHE, "fastmath": set(FASTMATH), "error_model": "numpy", "nogil": True}


_COMPILE_LOCK = threading.Lock()
_COMPILED: set[tuple] = set()  # (dispatcher id, dtype) pairs already compiled
_ADDRESSES: dict[tuple, int] = {}  # (dispatcher id, dtype) -> entry address


def kernel(function):
    """Compile ``function`` as a parallel fastconv kernel (``prange`` loops run on all cores).

    Call it through :func:`ensure_compiled`, which compiles one explicit signature per
    dtype, whose array types (``'A'`` layout, read-only inputs, unaligned) accept every
    layout, and then stops the dispatcher from specialising: a Fortran-ordered, read-only
    or broadcast input reuses the same machine code instead of paying for a new compile.
    """
    return njit(parallel=True, **_COMMON)(function)


def ensure_compiled(dispatcher, signature_of, dtype) -> None:
    """Compile ``signature_of(dtype)`` of a :func:`kernel` (or load it from the cache) once."""
    key = (id(dispatcher), dtype)
    if key in _COMPILED:
        return
    signature = signature_of(dtype)
    with _COMPILE_LOCK:
        if signature not in dispatcher.signatures:
            dispatcher.disable_compile(False)
            try:
                dispatcher.compile(signature)
            finally:
                dispatcher.disable_compile(True)
        _COMPILED.add(key)


def serial_twin(dispatcher, name: str):
    """The Python function of a :func:`kernel` compiled again without parallel loops.

    ``prange`` runs as ``range`` on the calling thread, which for small problems costs less
    than waking the thread pool (a lot less when other processes keep the cores busy). The
    arithmetic of each task, and so every result, is the same as the kernel's. The twin is
    a separate function named ``name`` so the on-disk caches of the two do not mix.
    """
    function = dispatcher.py_func
    twin = FunctionType(function.__code__, function.__globals__, name, function.__defaults__,
                        function.__closure__)
    twin.__qualname__ = name
    twin.__module__ = function.__module__
    twin.__doc__ = f"Serial twin of :func:`{function.__name__}` (same arguments and results)."
    return njit(**_COMMON)(twin)


def helper(function):
    """Compile ``function`` as a serial helper called from kernels.

    A call is linked: the helper's code is copied into each caller's module, where LLVM
    inlines it only if its inliner's cost model allows (small helpers).
    """
    return njit(inline="never", **_COMMON)(function)


def inlined(function):
    """Compile ``function`` as a serial helper inlined into each caller (hot inner code).

    Numba splices the helper's IR into every call site before typing, so the helper is
    always inlined, whatever LLVM's cost model says. That costs compile time (each call site
    types and lowers the helper again), so only code run per tap, strip or tile uses it:
    left to LLVM, the depthwise forward lost 12% and the strided stem 15%. Each splice also
    deep-copies the helper's IR, with everything it inlined itself, at a cost that grows
    with its blocks times its variables: keep helpers inlined at many sites free of
    branches (a store's whole / masked / none branches, inlined at 120 sites, were a third
    of the planar task's 21 s compile; :func:`fastconv._simd.vstore_leading` emits them in
    LLVM instead).
    """
    return njit(inline="always", **_COMMON)(function)


def address_of(dispatcher, signature_of, dtype) -> int:
    """Entry address of ``signature_of(dtype)`` of a compiled function, compiled (or loaded) once.

    The address stays valid for the life of the process (the dispatcher is a module global
    and keeps its machine code). Call it from compiled code with :func:`caller`.
    """
    key = (id(dispatcher), dtype)
    address = _ADDRESSES.get(key)
    if address is None:
        signature = signature_of(dtype)
        with _COMPILE_LOCK:
            if signature not in dispatcher.overloads:
                dispatcher.compile(signature)
            compiled = dispatcher.overloads[signature]
            address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        _ADDRESSES[key] = address
    return address


def kernel_signature(task_signature, task_arguments: int = 1):
    """``dtype -> argument types`` of a kernel that calls a task function by address.

    The task's parameters but its last ``task_arguments`` (the task index, and the thread
    index for the dense drivers), then the task's int64 address (``task_at``): a kernel
    passes its own arguments on unchanged, so no argument is converted.
    """

    @cache
    def signature(dtype) -> tuple:
        return task_signature(dtype)[:-task_arguments] + (types.int64,)

    return signature


def caller(signature_of):
    """An intrinsic ``call(address, arguments)`` running compiled code found at ``address``.

    ``address`` is what :func:`address_of` returns for a function compiled for the
    argument types ``signature_of(dtype)``, where ``dtype`` is that of the first element of
    the tuple ``arguments`` (an array). Each argument must convert safely to its parameter
    (a C-contiguous array where any layout is expected, a writeable one where a read-only
    one is, a narrower integer; not a float where an integer is), which is checked when the
    caller is compiled; the callee's result is dropped.

    Why: Numba links a copy of every function a compiled function calls into the caller and
    optimises and generates machine code for it again, in each caller (a parallel kernel
    twice: its loop body is a function of its own). A kernel whose loop body calls its
    task function by address compiles that task once.
    """

    @intrinsic
    def call(typingctx, address, arguments):
        if not (isinstance(address, types.Integer) and isinstance(arguments, types.BaseTuple)
                and len(arguments) and isinstance(arguments[0], types.Array)):
            return None
        expected = signature_of(as_dtype(arguments[0].dtype))
        if len(arguments) != len(expected):
            raise TypingError(f"fastconv internal: {len(arguments)} arguments for {expected}")
        for given, wanted in zip(arguments, expected):
            conversion = typingctx.can_convert(given, wanted)
            if conversion is None or conversion > Conversion.safe:
                raise TypingError(f"fastconv internal: {given} passed for {wanted}")

        def codegen(context, builder, signature, args):
            values = cgutils.unpack_tuple(builder, args[1])
            # arrays of every layout, alignment and mutability share one data model
            converted = [value if isinstance(wanted, types.Array)
                         else context.cast(builder, value, given, wanted)
                         for value, given, wanted in zip(values, arguments, expected)]
            function_type = context.call_conv.get_function_type(types.none, expected)
            function = builder.inttoptr(args[0], function_type.as_pointer())
            status, _ = context.call_conv.call_function(builder, function, types.none,
                                                        expected, converted)
            with builder.if_then(status.is_error, likely=False):
                context.call_conv.return_status_propagate(builder, status)
            return context.get_dummy_value()

        return types.none(address, arguments), codegen

    return call

