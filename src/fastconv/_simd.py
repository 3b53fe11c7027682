"""Explicit SIMD vector primitives for Numba kernels.

This module adds a Numba type for a native LLVM floating-point vector
(``<16 x float>`` / ``<8 x double>`` on a host with 512-bit vectors) and a
small set of ``@intrinsic`` functions that emit LLVM IR directly: unaligned
loads and stores at a flat element offset, masked loads and stores for tails,
scalar broadcast, zero vectors, fused multiply-add, element-wise arithmetic and
a horizontal sum with a fixed (deterministic) order.

Only Numba's public extension API is used (``numba.extending.register_model``,
``models.PrimitiveModel`` and ``numba.extending.intrinsic``), so the primitives
work in ``@njit(parallel=True, cache=True)`` functions and inside ``prange``
bodies.

All primitives are generic over the element type: the lane count is derived
from the dtype of the array (or pointer, or scalar) they are given, so a single
kernel source serves ``float32`` and ``float64``::

    @njit
    def axpy(a, x, y):
        n = x.size
        lanes = vlanes(x)
        av = vbroadcast(a)
        i = 0
        while i + lanes <= n:
            vstore(y, i, vfma(av, vload(x, i), vload(y, i)))
            i += lanes
        rem = n - i
        if rem > 0:
            vstore_masked(y, i, vfma(av, vload_masked(x, i, rem), vload_masked(y, i, rem)), rem)

Memory is addressed as ``(array, flat element offset)``: the offset counts
elements from the start of the array's data buffer, whatever the array's shape
and strides (the caller is responsible for passing C-contiguous arrays when it
computes offsets that assume so). Pointers (``numba.types.CPointer``) obtained
with :func:`ptr_of` are accepted wherever an array is. No bounds checks are
done.

The vector width is chosen once, at import, from the CPU Numba compiles for (the
host, or ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` when set): 512 bits with
AVX-512F, 256 bits with AVX, 128 bits otherwise. LLVM legalises any width on
any target, so the code stays correct everywhere; only speed depends on the
match. Numba's on-disk cache is keyed on the target CPU name and features, so a cached
kernel is never reused on a host with a different vector width.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import llvmlite.binding as _llvm_binding
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core import config as _numba_config
from numba.extending import intrinsic, models, overload, register_model

__all__ = [
    "LANES_F32",
    "LANES_F64",
    "VECTOR_BITS",
    "SimdVector",
    "keep_alive",
    "lanes_for",
    "prefetch",
    "prefetch_l2",
    "pointer_at",
    "ptr_of",
    "vadd",
    "vbroadcast",
    "vbroadcast_load",
    "veven_lanes",
    "vodd_lanes",
    "vextract",
    "vfma",
    "vinterleave_high",
    "vinterleave_low",
    "vlanes",
    "vleading",
    "vload",
    "vload_between",
    "vload_every",
    "vload_masked",
    "vmax",
    "vmul",
    "vreduce_add",
    "vslide_down",
    "vslide_up",
    "vstore",
    "vstore_every",
    "vstore_leading",
    "vstore_masked",
    "vsub",
    "vtranspose_copy",
    "vtranspose_copy_partial",
    "vtranspose_copy_window",
    "vtranspose_interleave",
    "vtranspose_spread",
    "vzero",
]


def _host_vector_bits() -> int:
    """Return the widest floating-point vector width Numba's code generator targets, in bits.

    That is the host CPU's, unless ``NUMBA_CPU_NAME`` is set (e.g. for portable
    caches), in which case the ``NUMBA_CPU_FEATURES`` string decides.
    """
    if _numba_config.CPU_NAME:
        flags = (_numba_config.CPU_FEATURES or "").split(",")
        features = {f[1:]: f[0] == "+" for f in flags if f[:1] in ("+", "-")}
    else:
        try:
            features = _llvm_binding.get_host_cpu_features()
        except RuntimeError:  # pragma: no cover - host feature query unsupported
            return 128
    if features.get("avx512f", False):
        return 512
    if features.get("avx", False):
        return 256
    return 128


#: Vector width in bits of the CPU Numba compiles for (512 with AVX-512F, 256 with AVX, else 128).
VECTOR_BITS: int = _host_vector_bits()
#: Number of float32 lanes in one vector (16 with AVX-512).
LANES_F32: int = VECTOR_BITS // 32
#: Number of float64 lanes in one vector (8 with AVX-512).
LANES_F64: int = VECTOR_BITS // 64

_LANES = {types.float32: LANES_F32, types.float64: LANES_F64}


def lanes_for(dtype: np.dtype | type | str) -> int:
    """Return the number of vector lanes used for a NumPy floating dtype.

    Parameters
    ----------
    dtype : dtype-like
        ``float32`` or ``float64``.

    Returns
    -------
    int
        The lane count of one SIMD vector of that dtype on this host.

    Raises
    ------
    TypeError
        If `dtype` is not float32 or float64.
    """
    dt = np.dtype(dtype)
    if dt == np.float32:
        return LANES_F32
    if dt == np.float64:
        return LANES_F64
    raise TypeError(f"SIMD vectors support float32 and float64, not {dt}")


class SimdVector(types.Type):
    """Numba type of a native SIMD vector of `lanes` elements of `dtype`.

    Parameters
    ----------
    dtype : numba.types.Float
        Element type, ``types.float32`` or ``types.float64``.
    lanes : int
        Number of elements.
    """

    def __init__(self, dtype: types.Float, lanes: int) -> None:
        self.dtype = dtype
        self.lanes = int(lanes)
        super().__init__(name=f"SimdVector({dtype} x {self.lanes})")


@register_model(SimdVector)
class _SimdVectorModel(models.PrimitiveModel):
    """Data model of :class:`SimdVector`: an LLVM ``<lanes x float|double>`` value."""

    def __init__(self, dmm, fe_type):
        elem = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(elem, fe_type.lanes))


# ----------------------------------------------------------------------------------------------
# typing helpers


def _elem_dtype(ty):
    """Return the float element type behind an array, pointer, scalar or dtype, else None."""
    if isinstance(ty, (types.Array, types.CPointer)):
        dt = ty.dtype
    elif isinstance(ty, types.DType):
        dt = ty.dtype
    elif isinstance(ty, types.NumberClass):
        dt = ty.instance_type
    elif isinstance(ty, SimdVector):
        dt = ty.dtype
    else:
        dt = ty
    return dt if dt in _LANES else None


def _vec_of(dt) -> SimdVector:
    return SimdVector(dt, _LANES[dt])


def _is_memory(ty) -> bool:
    return isinstance(ty, (types.Array, types.CPointer)) and ty.dtype in _LANES


def _load_signature(mem, *indices):
    """Typing of a load from ``mem`` at integer ``indices``: a vector of its dtype, else None.

    None (the call does not type) unless ``mem`` is float32/float64
    memory (:func:`_is_memory`) and every index an integer.
    """
    if not (_is_memory(mem) and all(isinstance(i, types.Integer) for i in indices)):
        return None
    return _vec_of(mem.dtype)(mem, *indices)


def _elem_ptr(context, builder, mem_ty, mem, off_ty, off):
    """Emit the address of element `off` of an array's data buffer or of a pointer."""
    if isinstance(mem_ty, types.Array):
        base = context.make_array(mem_ty)(context, builder, mem).data
    else:
        base = mem
    idx = context.cast(builder, off, off_ty, types.intp)
    return builder.gep(base, [idx])


def _itemsize(dt) -> int:
    return 4 if dt == types.float32 else 8


def _splat(builder, value, lanes):
    """Broadcast an LLVM scalar into a vector of `lanes` copies."""
    vty = ir.VectorType(value.type, lanes)
    zero = ir.Constant(ir.IntType(32), 0)
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), value, zero)
    mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined), mask)


def _lane_mask(builder, count, lanes):
    """Return an ``<lanes x i1>`` mask whose lanes ``[0, count)`` are set."""
    cnt = builder.trunc(count, ir.IntType(32)) if count.type.width > 32 else count
    if cnt.type.width < 32:
        cnt = builder.sext(cnt, ir.IntType(32))
    iota = ir.Constant(ir.VectorType(ir.IntType(32), lanes), list(range(lanes)))
    return builder.icmp_signed("<", iota, _splat(builder, cnt, lanes))


def _intrinsic_fn(builder, name, ret, args):
    module = builder.module
    return cgutils.get_or_insert_function(module, ir.FunctionType(ret, args), name)


def _llvm_suffix(vty: ir.VectorType) -> str:
    return f"v{vty.count}{'f32' if isinstance(vty.element, ir.FloatType) else 'f64'}"


# ----------------------------------------------------------------------------------------------
# intrinsics


@intrinsic
def vlanes(typingctx, like):
    """Return the lane count for the dtype of `like` as a compile-time constant.

    Parameters
    ----------
    like : array, pointer, float scalar or SimdVector
        Anything whose element type is float32 or float64.

    Returns
    -------
    int
        ``LANES_F32`` or ``LANES_F64``.
    """
    dt = _elem_dtype(like)
    if dt is None:
        return None
    lanes = _LANES[dt]
    sig = types.intp(like)

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, lanes)

    return sig, codegen


@intrinsic
def vzero(typingctx, like):
    """Return a vector of zeros with the element type of `like`.

    Parameters
    ----------
    like : array, pointer, float scalar or dtype
        Selects float32 (``LANES_F32`` lanes) or float64 (``LANES_F64`` lanes).

    Returns
    -------
    SimdVector
        The zero vector.
    """
    dt = _elem_dtype(like)
    if dt is None:
        return None
    vt = _vec_of(dt)
    sig = vt(like)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(sig.return_type), None)

    return sig, codegen


@intrinsic
def vbroadcast(typingctx, value):
    """Return a vector with every lane equal to the float scalar `value`.

    Parameters
    ----------
    value : float32 or float64
        The scalar; its type selects the vector type.

    Returns
    -------
    SimdVector
        The broadcast vector.
    """
    if value not in _LANES:
        return None
    vt = _vec_of(value)
    sig = vt(value)

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0], sig.return_type.lanes)

    return sig, codegen


@intrinsic
def vbroadcast_load(typingctx, mem, off):
    """Load the scalar ``mem[off]`` and broadcast it to every lane.

    LLVM folds this into the memory operand of an FMA (embedded broadcast on
    AVX-512) when the result feeds :func:`vfma` directly.

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset.

    Returns
    -------
    SimdVector
        The broadcast vector.
    """
    sig = _load_signature(mem, off)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        scalar = builder.load(ptr, align=_itemsize(sig.args[0].dtype))
        return _splat(builder, scalar, sig.return_type.lanes)

    return sig, codegen


@intrinsic
def vload(typingctx, mem, off):
    """Load one vector from ``mem[off : off + lanes]`` (no alignment required).

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset of the first lane.

    Returns
    -------
    SimdVector
        The loaded vector.
    """
    sig = _load_signature(mem, off)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vty = context.get_value_type(sig.return_type)
        vptr = builder.bitcast(ptr, vty.as_pointer())
        return builder.load(vptr, align=_itemsize(sig.args[0].dtype))

    return sig, codegen


@intrinsic
def vstore(typingctx, mem, off, vec):
    """Store vector `vec` to ``mem[off : off + lanes]`` (no alignment required).

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset of the first lane.
    vec : SimdVector
        The value; its element type must match `mem`.

    Returns
    -------
    None
    """
    if not (_is_memory(mem) and isinstance(off, types.Integer) and isinstance(vec, SimdVector)):
        return None
    if vec.dtype != mem.dtype:
        return None
    sig = types.void(mem, off, vec)

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vptr = builder.bitcast(ptr, args[2].type.as_pointer())
        builder.store(args[2], vptr, align=_itemsize(sig.args[0].dtype))
        return context.get_dummy_value()

    return sig, codegen


def _transpose_masks(lanes: int, bit: int) -> tuple[list[int], list[int]]:
    """Shuffle masks of one transpose stage: swap row-index bit ``bit`` with lane bit ``bit``.

    For rows ``a`` (row bit 0) and ``b`` (row bit 1) concatenated as ``[a, b]``, the
    low result takes ``a[j]`` where lane ``j`` has the bit clear and ``b[j ^ 2**bit]``
    where it is set; the high result ``a[j | 2**bit]`` where clear and ``b[j]`` where set.
    """
    step = 1 << bit
    low = [j if not j & step else lanes + (j ^ step) for j in range(lanes)]
    high = [j | step if not j & step else lanes + j for j in range(lanes)]
    return low, high


@intrinsic
def vload_between(typingctx, mem, off, lo, hi):
    """Load lanes ``[lo, hi)`` from ``mem[off:]``; the other lanes are zero.

    Memory outside ``mem[off + lo : off + hi]`` is not touched, so ``off`` may lie before
    the buffer (a row's left padding) and ``off + lanes`` past its end.

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer (lane 0's element).
    off : int
        Flat element offset of lane 0.
    lo, hi : int
        The lanes loaded, ``lo <= lane < hi`` (none when ``hi <= lo``).

    Returns
    -------
    SimdVector
        The loaded vector.
    """
    sig = _load_signature(mem, off, lo, hi)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vty = context.get_value_type(sig.return_type)
        vptr = builder.bitcast(ptr, vty.as_pointer())
        below_hi = _lane_mask(builder, args[3], vty.count)
        below_lo = _lane_mask(builder, args[2], vty.count)
        mask = builder.and_(below_hi, builder.not_(below_lo))
        return _masked_load(builder, vptr, vty, mask, _itemsize(sig.args[0].dtype))

    return sig, codegen


def _masked_load(builder, vptr, vty, mask, align):
    """Emit ``llvm.masked.load`` of the lanes of ``mask`` from ``vptr`` (zeros elsewhere)."""
    i32 = ir.IntType(32)
    fn = _intrinsic_fn(builder, f"llvm.masked.load.{_llvm_suffix(vty)}.p0", vty,
                       [vptr.type, i32, mask.type, vty])
    return builder.call(fn, [vptr, ir.Constant(i32, align), mask, ir.Constant(vty, None)])


def _transposed_rows(context, builder, mem_ty, mem, off, step, lanes, mask=None):
    """Load ``lanes`` vectors at ``mem[off + i * step]`` and transpose them in registers.

    Returns the list of transposed vectors: vector ``j`` holds element ``j`` of every row.
    With a ``mask`` (``<lanes x i1>``), only its lanes of each row are read (the others
    are zeros), so the memory past them is never touched.
    """
    vty = context.get_value_type(_vec_of(mem_ty.dtype))
    align = _itemsize(mem_ty.dtype)
    intp = context.get_value_type(types.intp)
    rows = []
    for i in range(lanes):
        at = builder.add(off, builder.mul(step, ir.Constant(intp, i)))
        ptr = _elem_ptr(context, builder, mem_ty, mem, types.intp, at)
        vptr = builder.bitcast(ptr, vty.as_pointer())
        rows.append(builder.load(vptr, align=align) if mask is None
                    else _masked_load(builder, vptr, vty, mask, align))
    bit = 0
    while (1 << bit) < lanes:
        low, high = _transpose_masks(lanes, bit)
        mask_low = ir.Constant(ir.VectorType(ir.IntType(32), lanes), low)
        mask_high = ir.Constant(ir.VectorType(ir.IntType(32), lanes), high)
        step_bit = 1 << bit
        for i in range(lanes):
            if i & step_bit:
                continue
            a, b = rows[i], rows[i | step_bit]
            rows[i] = builder.shuffle_vector(a, b, mask_low)
            rows[i | step_bit] = builder.shuffle_vector(a, b, mask_high)
        bit += 1
    return rows


def _transpose_signature(src, src_off, src_step, dst, dst_off, dst_step):
    """The ``void`` signature of a transposing intrinsic, or None for unsupported types."""
    ints = (src_off, src_step, dst_off, dst_step)
    if not (_is_memory(src) and _is_memory(dst) and src.dtype == dst.dtype
            and all(isinstance(v, types.Integer) for v in ints)):
        return None
    return types.void(src, src_off, src_step, dst, dst_off, dst_step)


def _transpose_codegen(lanes: int, write_row):
    """Codegen of a transposing intrinsic: the transposed rows, each written by ``write_row``.

    ``write_row(builder, pointer, vector, align)`` stores transposed vector ``j`` at
    ``pointer``, a vector pointer to ``dst[dst_off + j * dst_step]``.
    """

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(_vec_of(sig.args[0].dtype))
        align = _itemsize(sig.args[0].dtype)
        intp = context.get_value_type(types.intp)
        src_off, src_step, dst_off, dst_step = (
            context.cast(builder, args[k], sig.args[k], types.intp) for k in (1, 2, 4, 5))
        rows = _transposed_rows(context, builder, sig.args[0], args[0], src_off, src_step,
                                lanes)
        for j in range(lanes):
            off = builder.add(dst_off, builder.mul(dst_step, ir.Constant(intp, j)))
            ptr = _elem_ptr(context, builder, sig.args[3], args[3], types.intp, off)
            write_row(builder, builder.bitcast(ptr, vty.as_pointer()), rows[j], align)
        return context.get_dummy_value()

    return codegen


#: The parameters every transposing copy takes (:func:`vtranspose_copy` and its variants).
_TRANSPOSE_PARAMETERS = """Parameters
----------
src, dst : array or pointer of float32/float64 (same dtype)
    The memories; offsets count elements from their data pointers.
src_off, src_step, dst_off, dst_step : int
    Offset of the block's first element and the distance between its rows, in each."""


def _copy_typer(typingctx, src, src_off, src_step, dst, dst_off, dst_step):
    sig = _transpose_signature(src, src_off, src_step, dst, dst_off, dst_step)
    if sig is None:
        return None

    def write_row(builder, ptr, vector, align):
        builder.store(vector, ptr, align=align)

    return sig, _transpose_codegen(_LANES[src.dtype], write_row)


_copy_typer.__doc__ = f"""Copy a square block transposed.

``dst[dst_off + j*dst_step + i] = src[src_off + i*src_step + j]`` for ``i, j < lanes``.

The block is ``lanes x lanes`` elements (8 x 8 float32 with AVX2): one vector load per
source row, ``log2(lanes)`` stages of lane shuffles, one vector store per destination
row (no alignment required). A layout change (channels-first to channels-last) runs
at vector speed this way instead of one element at a time.

{_TRANSPOSE_PARAMETERS}

Returns
-------
None
"""
vtranspose_copy = intrinsic(_copy_typer)


def _partial_copy_codegen(lanes: int, windowed: bool):
    """Codegen of :func:`vtranspose_copy_partial` (``windowed``: of :func:`vtranspose_copy_window`).

    The first ``count`` columns of the block, each source row a masked load; with
    ``windowed``, only lanes ``[0, width)`` of each destination row are stored.
    """

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(_vec_of(sig.args[0].dtype))
        align = _itemsize(sig.args[0].dtype)
        intp = context.get_value_type(types.intp)
        src_off, src_step, dst_off, dst_step, count = (
            context.cast(builder, args[k], sig.args[k], types.intp) for k in (1, 2, 4, 5, 6))
        width = context.cast(builder, args[7], sig.args[7], types.intp) if windowed else None
        mask = _lane_mask(builder, count, lanes)
        rows = _transposed_rows(context, builder, sig.args[0], args[0], src_off, src_step,
                                lanes, mask)
        for j in range(lanes):
            wanted = builder.icmp_signed(">", count, ir.Constant(intp, j))
            with builder.if_then(wanted):
                off = builder.add(dst_off, builder.mul(dst_step, ir.Constant(intp, j)))
                ptr = _elem_ptr(context, builder, sig.args[3], args[3], types.intp, off)
                vptr = builder.bitcast(ptr, vty.as_pointer())
                if windowed:
                    _store_masked(builder, vptr, rows[j], width, align)
                else:
                    builder.store(rows[j], vptr, align=align)
        return context.get_dummy_value()

    return codegen


def _copy_partial_typer(typingctx, src, src_off, src_step, dst, dst_off, dst_step, count):
    sig = _transpose_signature(src, src_off, src_step, dst, dst_off, dst_step)
    if sig is None or not isinstance(count, types.Integer):
        return None
    return types.void(*sig.args, count), _partial_copy_codegen(_LANES[src.dtype], False)


_copy_partial_typer.__doc__ = f"""Copy the first ``count`` columns of a square block transposed.

``dst[dst_off + j*dst_step + i] = src[src_off + i*src_step + j]`` for ``i < lanes`` and
``j < count``: the ragged edge of a run of pixels that :func:`vtranspose_copy` moves a
block at a time. Each source row is read with a masked load (no element past column
``count`` is touched, so the block may end at the end of a buffer) and only the first
``count`` destination rows are written: everything else is left as it was.

{_TRANSPOSE_PARAMETERS}
count : int
    Columns of the source (rows of the destination) copied; ``<= 0`` copies nothing,
    ``>= lanes`` the whole block.

Returns
-------
None
"""
vtranspose_copy_partial = intrinsic(_copy_partial_typer)


def _copy_window_typer(typingctx, src, src_off, src_step, dst, dst_off, dst_step, count,
                       width):
    sig = _transpose_signature(src, src_off, src_step, dst, dst_off, dst_step)
    if sig is None or not all(isinstance(v, types.Integer) for v in (count, width)):
        return None
    return types.void(*sig.args, count, width), _partial_copy_codegen(_LANES[src.dtype], True)


_copy_window_typer.__doc__ = f"""Copy ``count`` columns of ``width`` rows of a block transposed.

``dst[dst_off + j*dst_step + i] = src[src_off + i*src_step + j]`` for ``i < width`` and
``j < count``: :func:`vtranspose_copy_partial` storing only lanes ``[0, width)`` of each
destination row (masked stores; the rest of the destination is left as it was). Every
source row is read (its first ``count`` elements): ``lanes`` rows must be readable.

{_TRANSPOSE_PARAMETERS}
count : int
    Columns of the source (rows of the destination) copied; ``<= 0`` copies nothing,
    ``>= lanes`` the whole block.
width : int
    Rows of the source (leading lanes of each destination row) copied.

Returns
-------
None
"""
vtranspose_copy_window = intrinsic(_copy_window_typer)

_EVERY_OTHER_DOC = """Copy a square block transposed into every other element of each row.

``dst[dst_off + j*dst_step + 2*i] = src[src_off + i*src_step + j]`` for ``i, j < lanes``.
{how}

""" + _TRANSPOSE_PARAMETERS + """

Returns
-------
None
"""


def _every_other(masked: bool, doc: str):
    """Typer of :func:`vtranspose_interleave` (blended) or :func:`vtranspose_spread` (masked)."""

    def typer(typingctx, src, src_off, src_step, dst, dst_off, dst_step):
        sig = _transpose_signature(src, src_off, src_step, dst, dst_off, dst_step)
        if sig is None:
            return None
        lanes = _LANES[src.dtype]
        half = lanes // 2
        # lane k of the first/second destination vector: element k // 2 of the first or
        # second half of the transposed vector where k is even; blended, the old element k
        # where it is odd
        masks = [ir.Constant(ir.VectorType(ir.IntType(32), lanes), [
            low + k // 2 if k % 2 == 0 or masked else lanes + k for k in range(lanes)])
            for low in (0, half)]
        even = ir.Constant(ir.VectorType(ir.IntType(1), lanes),
                           [k % 2 == 0 for k in range(lanes)])
        i32 = ir.IntType(32)

        def write_row(builder, ptr, vector, align):
            for part, mask in enumerate(masks):  # the row's two vectors
                at = builder.gep(ptr, [ir.Constant(ir.IntType(64), part)])
                if not masked:
                    old = builder.load(at, align=align)
                    builder.store(builder.shuffle_vector(vector, old, mask), at, align=align)
                    continue
                store = _intrinsic_fn(builder,
                                      f"llvm.masked.store.{_llvm_suffix(vector.type)}.p0",
                                      ir.VoidType(), [vector.type, at.type, i32, even.type])
                builder.call(store, [builder.shuffle_vector(vector, vector, mask), at,
                                     ir.Constant(i32, align), even])

        return sig, _transpose_codegen(lanes, write_row)

    typer.__doc__ = doc
    return typer


vtranspose_interleave = intrinsic(_every_other(False, _EVERY_OTHER_DOC.format(how="""\
The elements in between, ``dst[dst_off + j*dst_step + 2*i + 1]``, are read and written
back unchanged: each destination row is ``2 * lanes`` elements, loaded as two vectors,
blended with the transposed vector and stored (no scatter instruction on AVX2). The
caller must own the elements in between for the duration (no other thread may write
them), the last one included: a stride phase's pixels of a channels-first output, say,
whose neighbours belong to another phase, computed in another launch.""")))
vtranspose_spread = intrinsic(_every_other(True, _EVERY_OTHER_DOC.format(how="""\
As :func:`vtranspose_interleave`, but through masked stores: the elements in between are
not accessed, so other threads may write them meanwhile (stride phases running at once),
and the row's last element, ``2 * lanes - 1`` after its first, need not exist.""")))


@intrinsic
def vload_masked(typingctx, mem, off, count):
    """Load lanes ``[0, count)`` from ``mem[off:]``; the other lanes are zero.

    Memory past ``off + count`` is not touched, so this is safe at the end of a
    buffer.

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset of the first lane.
    count : int
        Number of leading lanes to load; ``<= 0`` loads nothing, ``>= lanes`` loads all.

    Returns
    -------
    SimdVector
        The loaded vector.
    """
    sig = _load_signature(mem, off, count)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vty = context.get_value_type(sig.return_type)
        vptr = builder.bitcast(ptr, vty.as_pointer())
        mask = _lane_mask(builder, args[2], vty.count)
        return _masked_load(builder, vptr, vty, mask, _itemsize(sig.args[0].dtype))

    return sig, codegen


@intrinsic
def vload_every(typingctx, mem, off, step, count):
    """Load lanes ``[0, count)`` from ``mem[off + i * step]``; the other lanes are zero.

    A masked gather (``vgatherdps``): only the addresses of the loaded lanes are touched,
    so this is safe at the end of a buffer. For a step of 2 two plain loads and
    :func:`veven_lanes` are faster where they may read the element past the last.

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset of lane 0.
    step : int
        Elements between consecutive lanes (any sign).
    count : int
        Number of leading lanes to load; ``<= 0`` loads nothing, ``>= lanes`` loads all.

    Returns
    -------
    SimdVector
        The loaded vector.
    """
    sig = _load_signature(mem, off, step, count)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        pointers = _lane_pointers(context, builder, sig, args)
        vty = context.get_value_type(sig.return_type)
        lanes = vty.count
        mask = _lane_mask(builder, args[3], lanes)
        i32 = ir.IntType(32)
        fn = _intrinsic_fn(builder, f"llvm.masked.gather.{_llvm_suffix(vty)}.v{lanes}p0", vty,
                           [pointers.type, i32, mask.type, vty])
        return builder.call(fn, [pointers, ir.Constant(i32, _itemsize(sig.args[0].dtype)),
                                 mask, ir.Constant(vty, None)])

    return sig, codegen


def _lane_pointers(context, builder, sig, args):
    """``<lanes x ptr>`` to elements ``off + i * step`` of ``mem`` (args 0, 1, 2 of ``sig``).

    llvmlite has no vector GEP: the addresses are computed as integers.
    """
    ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
    lanes = _LANES[sig.args[0].dtype]
    i64 = ir.IntType(64)
    base = _splat(builder, builder.ptrtoint(ptr, i64), lanes)
    stride = context.cast(builder, args[2], sig.args[2], types.int64)
    scaled = builder.mul(stride, ir.Constant(i64, _itemsize(sig.args[0].dtype)))
    iota = ir.Constant(ir.VectorType(i64, lanes), list(range(lanes)))
    addresses = builder.add(base, builder.mul(iota, _splat(builder, scaled, lanes)))
    return builder.inttoptr(addresses, ir.VectorType(ptr.type, lanes))


@intrinsic
def vstore_every(typingctx, mem, off, step, vec, count):
    """Store lanes ``[0, count)`` of `vec` to ``mem[off + i * step]``; nothing else is written.

    A masked scatter (``vscatterdps``), the inverse of :func:`vload_every`; a step of 2
    spreads the lanes over two vectors (constant shuffles) stored through masks of their
    even lanes instead (the scatter, with 64-bit addresses, was half of an input
    gradient's time).

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset of lane 0.
    step : int
        Elements between consecutive lanes (not 0).
    vec : SimdVector
        The values; the element type must match `mem`.
    count : int
        Number of leading lanes stored; ``<= 0`` stores nothing, ``>= lanes`` all.

    Returns
    -------
    None
    """
    ok = (_is_memory(mem) and all(isinstance(v, types.Integer) for v in (off, step, count))
          and isinstance(vec, SimdVector) and vec.dtype == mem.dtype)
    if not ok:
        return None
    sig = types.void(mem, off, step, vec, count)

    def codegen(context, builder, sig, args):
        vty = args[3].type
        lanes = vty.count
        i32 = ir.IntType(32)
        align = ir.Constant(i32, _itemsize(sig.args[0].dtype))
        step = context.cast(builder, args[2], sig.args[2], types.int64)
        with builder.if_else(builder.icmp_signed("==", step, ir.Constant(step.type, 2))) \
                as (two, other):
            with two:
                count = args[4]
                count = builder.trunc(count, i32) if count.type.width > 32 else count
                count = builder.sext(count, i32) if count.type.width < 32 else count
                ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
                store = _intrinsic_fn(builder, f"llvm.masked.store.{_llvm_suffix(vty)}.p0",
                                      ir.VoidType(), [vty, vty.as_pointer(), i32,
                                                      ir.VectorType(ir.IntType(1), lanes)])
                half = lanes // 2
                for part in range(2):
                    # lane k of this vector: input lane part * half + k // 2 if k is even
                    spread = builder.shuffle_vector(args[3], args[3], ir.Constant(
                        ir.VectorType(i32, lanes),
                        [part * half + k // 2 for k in range(lanes)]))
                    index = ir.Constant(ir.VectorType(i32, lanes), [
                        part * half + k // 2 if k % 2 == 0 else 2**31 - 1
                        for k in range(lanes)])
                    mask = builder.icmp_signed("<", index, _splat(builder, count, lanes))
                    at = builder.gep(ptr, [ir.Constant(ir.IntType(64), part * lanes)])
                    builder.call(store, [spread, builder.bitcast(at, vty.as_pointer()),
                                         align, mask])
            with other:
                pointers = _lane_pointers(context, builder, sig, args)
                mask = _lane_mask(builder, args[4], lanes)
                fn = _intrinsic_fn(builder,
                                   f"llvm.masked.scatter.{_llvm_suffix(vty)}.v{lanes}p0",
                                   ir.VoidType(), [vty, pointers.type, i32, mask.type])
                builder.call(fn, [args[3], pointers, align, mask])
        return context.get_dummy_value()

    return sig, codegen


def _store_masked(builder, vptr, vec, count, align):
    """Emit a masked store of lanes ``[0, count)`` of ``vec`` at ``vptr``."""
    vty = vec.type
    mask = _lane_mask(builder, count, vty.count)
    i32 = ir.IntType(32)
    fn = _intrinsic_fn(
        builder,
        f"llvm.masked.store.{_llvm_suffix(vty)}.p0",
        ir.VoidType(),
        [vty, vptr.type, i32, mask.type],
    )
    builder.call(fn, [vec, vptr, ir.Constant(i32, align), mask])


def _store_typer(mem, off, vec, count):
    """``void(mem, off, vec, count)`` if the arguments suit a partial store, else ``None``."""
    ok = (
        _is_memory(mem)
        and isinstance(off, types.Integer)
        and isinstance(vec, SimdVector)
        and isinstance(count, types.Integer)
    )
    if not ok or vec.dtype != mem.dtype:
        return None
    return types.void(mem, off, vec, count)


@intrinsic
def vstore_masked(typingctx, mem, off, vec, count):
    """Store lanes ``[0, count)`` of `vec` to ``mem[off:]``; other memory is untouched.

    Parameters
    ----------
    mem : array or pointer of float32/float64
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset of the first lane.
    vec : SimdVector
        The value; its element type must match `mem`.
    count : int
        Number of leading lanes to store; ``<= 0`` stores nothing, ``>= lanes`` stores all.

    Returns
    -------
    None
    """
    sig = _store_typer(mem, off, vec, count)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vptr = builder.bitcast(ptr, args[2].type.as_pointer())
        _store_masked(builder, vptr, args[2], args[3], _itemsize(sig.args[0].dtype))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vstore_leading(typingctx, mem, off, vec, count):
    """Store lanes ``[0, count)`` of `vec` to ``mem[off:]``: a plain store for a whole vector.

    Same result as :func:`vstore_masked`, but ``count >= lanes`` takes a plain (unmasked)
    store and ``count <= 0`` touches no memory at all, branches LLVM removes when `count`
    is a constant. The branches are emitted here rather than written in a jitted helper:
    Numba inlines an ``inline="always"`` helper by copying its IR, at a cost that grows with
    the blocks and variables of everything it inlines, and a store at the end of every
    register tile was most of the planar kernels' cold compile. Parameters and result as
    for :func:`vstore_masked`.
    """
    sig = _store_typer(mem, off, vec, count)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        vec, count = args[2], args[3]
        lanes = vec.type.count
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vptr = builder.bitcast(ptr, vec.type.as_pointer())
        align = _itemsize(sig.args[0].dtype)
        whole = builder.icmp_signed(">=", count, ir.Constant(count.type, lanes))
        with builder.if_else(whole) as (then, otherwise):
            with then:
                builder.store(vec, vptr, align=align)
            with otherwise:
                some = builder.icmp_signed(">", count, ir.Constant(count.type, 0))
                with builder.if_then(some):
                    _store_masked(builder, vptr, vec, count, align)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """Return ``a * b + c`` lane-wise with a single rounding (``llvm.fma``).

    Parameters
    ----------
    a, b, c : SimdVector
        Vectors of the same type.

    Returns
    -------
    SimdVector
        The fused multiply-add.
    """
    if not (isinstance(a, SimdVector) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, sig, args):
        vty = args[0].type
        fn = _intrinsic_fn(builder, f"llvm.fma.{_llvm_suffix(vty)}", vty, [vty, vty, vty])
        return builder.call(fn, list(args))

    return sig, codegen


def _binary(opname: str, doc: str):
    def typer(typingctx, a, b):
        if not (isinstance(a, SimdVector) and a == b):
            return None
        sig = a(a, b)

        def codegen(context, builder, sig, args):
            return getattr(builder, opname)(args[0], args[1])

        return sig, codegen

    typer.__doc__ = doc
    return typer


def _vmax_typer(typingctx, a, b):
    if not (isinstance(a, SimdVector) and a == b):
        return None
    sig = a(a, b)

    def codegen(context, builder, sig, args):
        vty = args[0].type
        fn = _intrinsic_fn(builder, f"llvm.maxnum.{_llvm_suffix(vty)}", vty, [vty, vty])
        return builder.call(fn, list(args))

    return sig, codegen


_BINARY_DOC = """Return ``a {op} b`` lane-wise.

Parameters
----------
a, b : SimdVector
    Vectors of the same type.

Returns
-------
SimdVector
    The result.
"""

vadd = intrinsic(_binary("fadd", _BINARY_DOC.format(op="+")))
vsub = intrinsic(_binary("fsub", _BINARY_DOC.format(op="-")))
vmul = intrinsic(_binary("fmul", _BINARY_DOC.format(op="*")))
_vmax_typer.__doc__ = """Return the lane-wise maximum of `a` and `b` (``llvm.maxnum``: NaN loses).

Parameters
----------
a, b : SimdVector
    Vectors of the same type.

Returns
-------
SimdVector
    The result.
"""
vmax = intrinsic(_vmax_typer)


@intrinsic
def vreduce_add(typingctx, vec):
    """Return the sum of the lanes of `vec`, in a fixed pairwise order.

    The lanes are summed by repeatedly adding the upper half of the vector to
    the lower half, so the result is deterministic (but not the same as a
    sequential left-to-right sum).

    Parameters
    ----------
    vec : SimdVector
        The vector.

    Returns
    -------
    float
        The horizontal sum, of the vector's element type.
    """
    if not isinstance(vec, SimdVector):
        return None
    sig = vec.dtype(vec)

    def codegen(context, builder, sig, args):
        v = args[0]
        n = v.type.count
        while n > 1:
            half = n // 2
            lo = builder.shuffle_vector(
                v, v, ir.Constant(ir.VectorType(ir.IntType(32), half), list(range(half)))
            )
            hi = builder.shuffle_vector(
                v, v, ir.Constant(ir.VectorType(ir.IntType(32), half), list(range(half, n)))
            )
            v = builder.fadd(lo, hi)
            n = half
        return builder.extract_element(v, ir.Constant(ir.IntType(32), 0))

    return sig, codegen


_PAIR_PARAMETERS = """
Parameters
----------
{a}, {b} : SimdVector
    Vectors of the same type.

Returns
-------
SimdVector
    {returns}
"""


def _pair_shuffle(lanes_of: Callable[[int], list[int]], doc: str, returns: str,
                  names: tuple[str, str] = ("a", "b")):
    """An intrinsic ``f(a, b)`` picking lanes of the pair ``(a, b)`` by a constant shuffle.

    ``lanes_of(lanes)`` lists, for each result lane, its lane of the pair (``a`` is
    ``0 .. lanes - 1``, ``b`` the next ``lanes``). Its docstring is ``doc``, then the
    parameters (``names``) and what it ``returns``.
    """
    doc += _PAIR_PARAMETERS.format(a=names[0], b=names[1], returns=returns)

    def typer(typingctx, a, b):
        if not (isinstance(a, SimdVector) and a == b):
            return None
        sig = a(a, b)

        def codegen(context, builder, sig, args):
            lanes = args[0].type.count
            mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), lanes_of(lanes))
            return builder.shuffle_vector(args[0], args[1], mask)

        return sig, codegen

    typer.__doc__ = doc
    return intrinsic(typer)


_SLIDE_DOC = """Return ``{result}``: the lanes of the pair ``({a}, {b})`` one lane {way}.

Two adjacent vectors of a row give the vector one element {side} of ``{mid}``: the
shifted taps of a row filter without reloading the row.
"""

_EVEN_DOC = """Return the even lanes of the pair ``(a, b)``: ``[a[0], a[2], ..., b[lanes - 2]]``.

Two adjacent vectors of a row give every other element of it (a constant shuffle:
``vpermt2ps``); the odd lanes are the even lanes of the pair one element on.
"""
veven_lanes = _pair_shuffle(lambda lanes: list(range(0, 2 * lanes, 2)), _EVEN_DOC,
                            "The even lanes.")

_ODD_DOC = """Return the odd lanes of the pair ``(a, b)``: ``[a[1], a[3], ..., b[lanes - 1]]``.

With :func:`veven_lanes` of the same pair, both halves of a stride-2 split of a row from
the same two loads.
"""
vodd_lanes = _pair_shuffle(lambda lanes: list(range(1, 2 * lanes, 2)), _ODD_DOC,
                           "The odd lanes.")

# valignd: the pair's lanes from lanes - 1 (up) or 1 (down) on
vslide_up = _pair_shuffle(lambda lanes: list(range(lanes - 1, 2 * lanes - 1)), _SLIDE_DOC.format(
    result="[prev[lanes - 1], cur[0], ..., cur[lanes - 2]]", a="prev", b="cur", way="up",
    side="left", mid="cur"), "The slid vector.", ("prev", "cur"))
vslide_down = _pair_shuffle(lambda lanes: list(range(1, lanes + 1)), _SLIDE_DOC.format(
    result="[cur[1], ..., cur[lanes - 1], nxt[0]]", a="cur", b="nxt", way="down",
    side="right", mid="cur"), "The slid vector.", ("cur", "nxt"))


_INTERLEAVE_DOC = """Return ``[a[{k}], b[{k}], a[{k} + 1], b[{k} + 1], ...]``, the {half} halves.

With :func:`{other}`, two rows of values (two column phases of a row, say) become the
row they alternate in, a vector at a time.
"""


def _interleaved(first: int, lanes: int) -> list[int]:
    """Lanes of the pair alternating ``a[first + i]`` and ``b[first + i]``."""
    return [first + k // 2 + (lanes if k % 2 else 0) for k in range(lanes)]


vinterleave_low = _pair_shuffle(lambda lanes: _interleaved(0, lanes), _INTERLEAVE_DOC.format(
    k="0", half="low", other="vinterleave_high"),
    "Lanes ``0`` to ``lanes / 2 - 1`` of each, alternating.")
vinterleave_high = _pair_shuffle(
    lambda lanes: _interleaved(lanes // 2, lanes),
    _INTERLEAVE_DOC.format(k="lanes / 2", half="high", other="vinterleave_low"),
    "Lanes ``lanes / 2`` to ``lanes - 1`` of each, alternating.")


@intrinsic
def vleading(typingctx, vec, count):
    """Return the lanes ``[0, count)`` of `vec`, zeros in the others (a select, no memory).

    Parameters
    ----------
    vec : SimdVector
        The vector.
    count : int
        Lanes kept; ``<= 0`` keeps none, ``>= lanes`` all.

    Returns
    -------
    SimdVector
        The vector with its other lanes zeroed.
    """
    if not (isinstance(vec, SimdVector) and isinstance(count, types.Integer)):
        return None
    sig = vec(vec, count)

    def codegen(context, builder, sig, args):
        vty = args[0].type
        mask = _lane_mask(builder, args[1], vty.count)
        return builder.select(mask, args[0], ir.Constant(vty, None))

    return sig, codegen


@intrinsic
def vextract(typingctx, vec, lane):
    """Return lane `lane` of `vec` as a scalar.

    Parameters
    ----------
    vec : SimdVector
        The vector.
    lane : int
        Lane index in ``[0, lanes)`` (not checked).

    Returns
    -------
    float
        The element.
    """
    if not (isinstance(vec, SimdVector) and isinstance(lane, types.Integer)):
        return None
    sig = vec.dtype(vec, lane)

    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.int32)
        return builder.extract_element(args[0], idx)

    return sig, codegen


@intrinsic
def ptr_of(typingctx, mem, off):
    """Return a pointer (``CPointer(dtype)``) to element `off` of `mem`.

    Pointers are accepted by every load/store primitive in place of an array,
    and support ``p[i]`` / ``p[i] = v`` for scalars. They let a kernel choose
    between two buffers once, outside an inner loop
    (``p = ptr_of(x, i) if ok else ptr_of(zeros, 0)``), and, unlike arrays, cost
    no reference counting when passed to another jitted function. The pointer
    does not keep the array alive: use it only while the array is referenced
    (:func:`keep_alive` marks the end of that span).

    Parameters
    ----------
    mem : array or pointer of any numeric dtype
        The memory; `off` counts elements from its data pointer.
    off : int
        Flat element offset.

    Returns
    -------
    CPointer
        The element address.
    """
    ok = isinstance(mem, (types.Array, types.CPointer)) and isinstance(mem.dtype, types.Number)
    if not (ok and isinstance(off, types.Integer)):
        return None
    sig = types.CPointer(mem.dtype)(mem, off)

    def codegen(context, builder, sig, args):
        return _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])

    return sig, codegen


@intrinsic
def pointer_at(typingctx, address, like):
    """Return the address ``address`` as a pointer to elements of `like`'s dtype.

    For memory that Python code holds and describes by its address (``a.ctypes.data``):
    ``numba.carray(pointer_at(address, like), shape)`` views it as an array. Nothing keeps
    that memory alive: the caller must hold the array it came from for the whole call.

    Parameters
    ----------
    address : int
        A data address.
    like : array or pointer of any numeric dtype
        Gives the element type (only its type is used).

    Returns
    -------
    CPointer
        The address as a typed pointer.
    """
    ok = isinstance(like, (types.Array, types.CPointer)) and isinstance(like.dtype, types.Number)
    if not (ok and isinstance(address, types.Integer)):
        return None
    sig = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return sig, codegen


@intrinsic
def keep_alive(typingctx, array):
    """Use `array` here, so Numba keeps it allocated at least until this point.

    Numba frees an array after its last use; a pointer from :func:`ptr_of` is not a use.
    Call this after the last access through a pointer into a locally allocated array.
    Emits no instructions.

    Parameters
    ----------
    array : array
        The array to keep.
    """
    if not isinstance(array, types.Array):
        return None
    sig = types.none(array)

    def codegen(context, builder, sig, args):
        return context.get_dummy_value()

    return sig, codegen


def _prefetch_typer(locality: int, doc: str):
    """Typer of a prefetch into the cache level ``llvm.prefetch``'s `locality` names."""

    def typer(typingctx, mem, off):
        ok = isinstance(mem, (types.Array, types.CPointer)) and isinstance(mem.dtype,
                                                                            types.Number)
        if not (ok and isinstance(off, types.Integer)):
            return None
        sig = types.void(mem, off)

        def codegen(context, builder, sig, args):
            ptr = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = _intrinsic_fn(builder, "llvm.prefetch.p0", ir.VoidType(),
                               [i8p, i32, i32, i32])
            rw, level, cache = ir.Constant(i32, 0), ir.Constant(i32, locality), \
                ir.Constant(i32, 1)
            builder.call(fn, [builder.bitcast(ptr, i8p), rw, level, cache])
            return context.get_dummy_value()

        return sig, codegen

    typer.__doc__ = doc
    return typer


_PREFETCH_DOC = """Hint the CPU to fetch the cache line holding ``mem[off]`` into {level}.

``llvm.prefetch`` (read, data, locality {locality}). Never faults, so `off` may point past
the end of the buffer.

Parameters
----------
mem : array or pointer of any numeric dtype
    The memory; `off` counts elements from its data pointer.
off : int
    Flat element offset.

Returns
-------
None
"""
prefetch = intrinsic(_prefetch_typer(3, _PREFETCH_DOC.format(level="L1", locality=3)))
prefetch_l2 = intrinsic(_prefetch_typer(2, _PREFETCH_DOC.format(
    level="L2 (data wanted soon, but not before the cache's current contents)", locality=2)))


# ----------------------------------------------------------------------------------------------
# operators on vectors (a + b, a - b, a * b)


def _make_operator_overload(op, fn):
    @overload(op)
    def _ov(a, b):
        if isinstance(a, SimdVector) and a == b:
            return lambda a, b: fn(a, b)
        return None

    return _ov


_make_operator_overload(operator.add, vadd)
_make_operator_overload(operator.sub, vsub)
_make_operator_overload(operator.mul, vmul)
