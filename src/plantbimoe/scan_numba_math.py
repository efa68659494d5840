"""Scalar helpers shared by the numba kernels (scan and conv): libm-free exp2/log1p for float32,
typed constants, and bfloat16 storage.

bfloat16 arrays reach numba as uint16 (numba has no bf16 type): ``to_compute`` widens a stored
element to float32 (a 16-bit shift), ``stored`` rounds a float32 back to the nearest bf16 (ties
to even, NaN kept), so kernels read and write bf16 activations directly and compute in float32.

For fp32, exp2 is a degree-5 polynomial scaled by a bit-built power of two (relative error
< 1e-7) and log1p an odd series in e/(2+e) (< 2e-8), so inner loops call no libm function and
vectorise; fp64 uses numpy's exp2/log1p. Literal constants never enter float arithmetic (numba
would promote fp32 to fp64): typed constants come from ``consts``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, make_view

JIT = {"nogil": True, "cache": True, "fastmath": True, "error_model": "numpy"}
"""Options of every kernel: no GIL, cached on disk, fast math, no zero-division checks."""

SOFTPLUS_THRESHOLD = 20.0
"""Above it softplus(x) = x and its derivative is 1 (torch's default)."""


@intrinsic
def _f32_from_bits(typingctx, bits):  # type: ignore[no-untyped-def]
    """Reinterpret an int32 as the float32 with the same bits."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _bits_from_f32(typingctx, value):  # type: ignore[no-untyped-def]
    """Reinterpret a float32 as the uint32 with the same bits."""
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def unit_stride(typingctx, row):  # type: ignore[no-untyped-def]
    """The 1-d ``row`` (any layout) retyped as C-contiguous, for a caller that has checked that
    its stride is its itemsize. Loops over a C-typed row compile to plain vector loads; over an
    'A'-typed one LLVM keeps the stride symbolic and runs them ~2x slower."""
    if not isinstance(row, types.Array) or row.ndim != 1:
        return None
    sig = row.copy(layout="C")(row)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty, retty = signature.args[0], signature.return_type
        ary = make_array(aryty)(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, ary.shape)
        view = make_view(context, builder, aryty, ary, retty, ary.data, shape, [ary.itemsize])
        out = view._getvalue()
        return impl_ret_borrowed(context, builder, retty, out)

    return sig, codegen


def exp2(v):  # type: ignore[no-untyped-def]
    """2**v (typed by the overload below)."""
    return np.exp2(v)


def log1p_unit(e):  # type: ignore[no-untyped-def]
    """log(1 + e) for 0 <= e <= 1 (typed by the overload below)."""
    return np.log1p(e)


def to_compute(v):  # type: ignore[no-untyped-def]
    """A stored element in the compute type: bf16 bits (uint16) -> float32, others unchanged."""
    return v


def stored(v, out):  # type: ignore[no-untyped-def]
    """``v`` converted for storing into array ``out`` (float32 -> bf16 bits for uint16 arrays)."""
    return v


def _exp2_f32(v):  # type: ignore[no-untyped-def]
    v = min(max(v, np.float32(-126.0)), np.float32(127.0))
    k = np.floor(v)
    f = v - k
    p = np.float32(1.8775767e-3)
    p = p * f + np.float32(8.9893397e-3)
    p = p * f + np.float32(5.5826318e-2)
    p = p * f + np.float32(2.4015361e-1)
    p = p * f + np.float32(6.9315308e-1)
    p = p * f + np.float32(9.9999994e-1)
    return p * _f32_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))


def _log1p_unit_f32(e):  # type: ignore[no-untyped-def]
    s = e / (np.float32(2.0) + e)  # log(1+e) = 2 atanh(s), s <= 1/3
    s2 = s * s
    p = np.float32(1.0 / 13.0)
    p = p * s2 + np.float32(1.0 / 11.0)
    p = p * s2 + np.float32(1.0 / 9.0)
    p = p * s2 + np.float32(1.0 / 7.0)
    p = p * s2 + np.float32(1.0 / 5.0)
    p = p * s2 + np.float32(1.0 / 3.0)
    p = p * s2 + np.float32(1.0)
    return np.float32(2.0) * s * p


def _bf16_from_f32(v, out):  # type: ignore[no-untyped-def]
    bits = _bits_from_f32(v)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)  # integer test: fastmath-proof
    return np.uint16(0x7FC0) if nan else np.uint16(rounded)


@overload(exp2, jit_options={"fastmath": True})
def _exp2_typed(v):  # type: ignore[no-untyped-def]
    return _exp2_f32 if v == types.float32 else (lambda v: np.exp2(v))


@overload(log1p_unit, jit_options={"fastmath": True})
def _log1p_unit_typed(e):  # type: ignore[no-untyped-def]
    return _log1p_unit_f32 if e == types.float32 else (lambda e: np.log1p(e))


@overload(to_compute)
def _to_compute_typed(v):  # type: ignore[no-untyped-def]
    if v == types.uint16:
        return lambda v: _f32_from_bits(np.int32(v) << np.int32(16))
    return lambda v: v


@overload(stored)
def _stored_typed(v, out):  # type: ignore[no-untyped-def]
    if out.dtype == types.uint16:
        return _bf16_from_f32
    return lambda v, out: v


@njit(**JIT)
def consts(dtype):  # type: ignore[no-untyped-def]
    """(0, 1, log2 e, softplus threshold) in ``dtype``."""
    c = np.empty(4, dtype)
    c[0], c[1], c[2], c[3] = 0.0, 1.0, math.log2(math.e), SOFTPLUS_THRESHOLD
    return c


@njit(**JIT)
def zeros(shape, dtype):  # type: ignore[no-untyped-def]
    return np.zeros(shape, dtype)


def compute_type(storage: np.dtype) -> types.Float:
    """The numba float type kernels compute in for arrays stored as ``storage`` (float64, float32,
    or uint16 = bf16 bits): float64 for float64, else float32."""
    return types.float64 if storage == np.float64 else types.float32
